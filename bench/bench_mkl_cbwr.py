"""MKL's strict reproducibility mode (`MKL_CBWR=AUTO,STRICT`, which dlab sets on import): its
cost, as ms per training step, against MKL's default mode, each in a fresh process.

In the default mode MKL's sgemm may split its sums by thread count on some CPUs (seen on an AMD
EPYC: the JHU net and an MLP train to other bits at 1 and 2 threads); in STRICT mode it does
not (Intel's "strict CNR" for ?gemm). The steps: SGD steps on fixed random batches of 256 for
the JHU net (fused kernel, channels-last, Fashion-MNIST shapes), dlab's MLP, and airnet at
widths 32-64-128 in float32 and 64-256-256 under bf16 autocast (CIFAR-10 shapes); median of
`--steps` after 3 warm-up steps, modes alternated `--rounds` times. Run:

    python bench/bench_mkl_cbwr.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[3])
import torch
from bench_bf16_cpu import train_step_ms
from dlab.config import MLPConfig, NetConfig
from dlab.models.airnet import AirNetConfig
from dlab.torch_engine.fused import fuse
from dlab.torch_engine.models import build_model
torch.set_num_threads(int(sys.argv[1]))
out = {"cbwr": __import__("os").environ.get("MKL_CBWR")}
cases = (("JHU net (fused)", NetConfig(), (1, 28, 28), "fp32"),
         ("MLP", MLPConfig(), (1, 28, 28), "fp32"),
         ("airnet 32-64-128 fp32", AirNetConfig(widths=(32, 64, 128)), (3, 32, 32), "fp32"),
         ("airnet 64-256-256 bf16", AirNetConfig(), (3, 32, 32), "bf16"))
for name, cfg, shape, precision in cases:
    torch.manual_seed(0)
    model = build_model(cfg, shape, 10)
    x, y = torch.randn(256, *shape), torch.randint(0, 10, (256,))
    if name != "MLP":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if name.startswith("JHU"):
        fuse(model, torch.device("cpu"))
    out[name] = train_step_ms(model, x, y, precision, int(sys.argv[2]), warmup=3)
print(json.dumps(out))
"""


def _child(threads: int, steps: int, mode: str) -> dict:
    env = {**os.environ, "DLAB_KERNELS": "on", "MKL_CBWR": mode}
    here = str(Path(__file__).resolve().parent)
    done = subprocess.run([sys.executable, "-c", _CHILD, str(threads), str(steps), here], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args()
    modes = {"default": "AUTO", "strict": "AUTO,STRICT"}
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    for _ in range(a.rounds):
        for label, mode in modes.items():
            runs[label].append(_child(a.threads, a.steps, mode))
    print(f"load {os.getloadavg()[0]:.2f}, {a.threads} threads, {a.steps} steps x {a.rounds} "
          "rounds per mode")
    print("| step (batch 256) | MKL default ms | MKL strict ms | strict / default |")
    print("| --- | ---: | ---: | ---: |")
    for name in [k for k in runs["default"][0] if k != "cbwr"]:
        d = statistics.median(r[name] for r in runs["default"])
        s = statistics.median(r[name] for r in runs["strict"])
        print(f"| {name} | {d:.1f} | {s:.1f} | {s / d:.2f} |")


if __name__ == "__main__":
    main()
