"""Which whole training steps give the same bits at one thread and at two.

A study with `--workers 1` runs its children at twice the threads of `--workers 2`. Measured on
torch 2.13 (CPU): the default net with the fused kernel, and an MLP, train to bit-identical
weights at 1, 2 and 3 threads; the default net with DLAB_KERNELS=off and a BN CNN do not
(oneDNN's conv weight and bias gradients, and channels-last batch norm, sum in an order that
depends on the thread count). This pins the two that hold. Each count runs in a fresh process:
torch fixes some thread pools at first use, and this process's count stays untouched.

On an AMD EPYC (AVX512, no AMX) the two hold only in MKL's strict mode, which `import dlab` sets
(`MKL_CBWR=AUTO,STRICT`): MKL's default sgemm there splits its sums by thread count. The child
imports dlab first, as the CLI does; a user's own MKL_CBWR is kept.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

# 20 SGD steps (momentum, dropout on) on one fixed random batch, as the trainer steps: conv
# models channels-last, the net fused; prints a hash of each model's final state dict.
_STEPS = """
import hashlib, json, os, sys
import dlab
import torch, torch.nn.functional as F
from dlab.config import MLPConfig, NetConfig
from dlab.torch_engine.fused import fuse
from dlab.torch_engine.models import build_model
torch.set_num_threads(int(sys.argv[1]))
hashes = {}
for name, cfg in (("net", NetConfig()), ("mlp", MLPConfig())):
    torch.manual_seed(0)
    model = build_model(cfg, (1, 28, 28), 10)
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(128, 1, 28, 28, generator=gen), torch.randint(0, 10, (128,), generator=gen)
    if name == "net":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
        assert fuse(model, torch.device("cpu")) == 2
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    model.train()
    for _ in range(20):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    h = hashlib.sha256()
    for key, t in model.state_dict().items():
        h.update(key.encode() + t.detach().contiguous().numpy().tobytes())
    hashes[name] = h.hexdigest()
print(json.dumps({"threads": torch.get_num_threads(), "cbwr": os.environ.get("MKL_CBWR"),
                  **hashes}))
"""


def _train(threads, **env):
    base = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}  # dlab's default
    child = subprocess.run([sys.executable, "-c", _STEPS, str(threads)], capture_output=True,
                           text=True, timeout=300, env={**base, "DLAB_KERNELS": "on", **env})
    assert child.returncode == 0, child.stderr[-2000:]
    return json.loads(child.stdout.splitlines()[-1])


@pytest.mark.skipif(shutil.which(os.environ.get("CC", "cc")) is None,
                    reason="no C compiler to build the kernel")
def test_the_fused_net_and_an_mlp_train_to_the_same_bits_at_1_and_2_threads():
    one, two = _train(1), _train(2)
    assert (one["threads"], two["threads"]) == (1, 2)
    assert one["cbwr"] == two["cbwr"] == "AUTO,STRICT"
    assert one["net"] == two["net"], "the fused net's weights depend on the thread count"
    assert one["mlp"] == two["mlp"], "the MLP's weights depend on the thread count"


def test_a_users_own_mkl_mode_is_kept():
    assert _train(1, MKL_CBWR="COMPATIBLE")["cbwr"] == "COMPATIBLE"
