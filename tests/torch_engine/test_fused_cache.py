"""The fused kernel's cache: a damaged library or checksum is rebuilt, a compiler that writes junk
falls back with one warning line, never a crash; `kernel_info()` for the manifest.

Each scenario runs in a fresh process (as a training would) with this test's own
`XDG_CACHE_HOME` (tests/conftest.py), so a regression shows as a failed test, not a Bus error in
pytest itself.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from dlab.errors import DlabError
from dlab.paths import cache_root
from dlab.torch_engine import fused

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CC", "cc")) is None,
                                reason="no C compiler to build the kernel")

# Trains the default net three SGD steps fused and unfused from the same weights; prints what
# the kernel was and how far apart the two nets' weights ended up.
_TRAIN = """
import json, torch, torch.nn.functional as F
from dlab.config import NetConfig
from dlab.torch_engine.fused import fuse, kernel_info
from dlab.torch_engine.models import build_model
torch.manual_seed(0)
plain = build_model(NetConfig(), (1, 28, 28), 10)
model = build_model(NetConfig(), (1, 28, 28), 10)
model.load_state_dict(plain.state_dict())
count = fuse(model, torch.device("cpu"))
x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
for m in (plain, model):
    m.eval()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(m(x), y).backward()
        opt.step()
diff = max((a - b).abs().max().item() for a, b in zip(model.parameters(), plain.parameters()))
print(json.dumps({"fused": count, "diff": diff, **kernel_info()}))
"""


def _train(**env):
    """Run _TRAIN in a fresh process; (its JSON line, its stderr lines)."""
    child = subprocess.run([sys.executable, "-c", _TRAIN], capture_output=True, text=True,
                           timeout=300, env={**os.environ, **env})
    assert child.returncode == 0, f"rc {child.returncode}: {child.stderr[-2000:]}"
    return json.loads(child.stdout.splitlines()[-1]), child.stderr.splitlines()


def _libraries():
    return sorted((cache_root() / "kernels").glob("conv_pool_relu-*.so"))


def _built():
    """Build the kernel into this test's cache; its library's path."""
    fused.library.cache_clear()
    try:
        assert fused.library() is not None
    finally:
        fused.library.cache_clear()
    [so] = _libraries()
    return so


def _damage(path, data):
    """Put `data` at `path` as a new file: this process may still have the old one mapped."""
    tmp = path.with_name(path.name + ".damaged")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_rebuilt(so, info, err):
    assert err == [], err  # a rebuild is silent
    assert info["enabled"] and info["fused"] == 2 and info["diff"] < 1e-4
    assert info["so_sha256"] == _sha(so) == (so.parent / (so.name + ".sha256")).read_text().strip()
    assert _libraries() == [so]


def _junk_compiler(tmp_path):
    """A `$CC` that reports the real compiler's version (so the cache key is the same) but writes
    junk where the library should go."""
    cc = tmp_path / "junk-cc"
    cc.write_text('#!/bin/sh\n[ "$1" = --version ] && exec cc --version\n'
                  'while [ $# -gt 1 ]; do [ "$1" = -o ] && printf garbage > "$2"; shift; done\n')
    cc.chmod(0o755)
    return str(cc)


def test_a_truncated_library_is_rebuilt():
    so = _built()
    _damage(so, so.read_bytes()[:3000])  # finding k04: this used to be a Bus error
    _assert_rebuilt(so, *_train())


def test_junk_over_the_library_is_rebuilt():
    so = _built()
    _damage(so, os.urandom(so.stat().st_size))
    _assert_rebuilt(so, *_train())


def test_a_junk_checksum_is_rebuilt():
    so = _built()
    _damage(so.with_name(so.name + ".sha256"), b"0" * 64 + b"\n")
    _assert_rebuilt(so, *_train())


def test_a_damaged_library_with_a_matching_checksum_fails_its_trial_load_and_is_rebuilt():
    so = _built()
    _damage(so, so.read_bytes()[:3000])
    _damage(so.with_name(so.name + ".sha256"), _sha(so).encode() + b"\n")
    assert fused._trial_load(so) != ""
    _assert_rebuilt(so, *_train())


def test_a_compiler_writing_junk_falls_back_with_one_line_and_keeps_nothing(tmp_path):
    info, err = _train(CC=_junk_compiler(tmp_path))  # finding k03
    assert len(err) == 1 and "could not build the conv+pool+relu kernel" in err[0], err
    assert not info["enabled"] and info["reason"].startswith("failed build: ")
    assert info["fused"] == 0 and info["diff"] == 0.0 and info["so_sha256"] == ""
    assert info["compiler"].endswith("junk-cc") and info["compiler_version"]  # cc's, via junk-cc
    assert not list((cache_root() / "kernels").glob("*.so*"))
    _built()  # the next run with a working compiler builds it


def test_a_damaged_library_and_a_failing_rebuild_fall_back_with_one_line(tmp_path):
    so = _built()
    _damage(so, so.read_bytes()[:3000])
    info, err = _train(CC=_junk_compiler(tmp_path))
    assert len(err) == 1 and "could not build" in err[0], err
    assert not info["enabled"] and info["fused"] == 0 and info["diff"] == 0.0


def test_the_verification_runs_once_per_process(monkeypatch):
    fused.library.cache_clear()
    try:
        assert fused.library() is not None
        monkeypatch.setattr(fused, "_trial_load", lambda path: pytest.fail("verified twice"))
        monkeypatch.setattr(fused, "_compile", lambda *a: pytest.fail("built twice"))
        assert fused.library() is not None
    finally:
        fused.library.cache_clear()


def test_kernel_info_when_enabled():
    fused.library.cache_clear()
    try:
        info = fused.kernel_info()
    finally:
        fused.library.cache_clear()
    assert list(info) == ["enabled", "reason", "compiler", "compiler_version", "so_sha256",
                          "cpu_flags", "omp_threads"]
    [so] = _libraries()
    assert info["enabled"] and info["reason"] == "" and info["so_sha256"] == _sha(so)
    assert info["compiler_version"] and "\n" not in info["compiler_version"]
    assert info["omp_threads"] == torch.get_num_threads()
    with open("/proc/cpuinfo") as f:  # built with -march=native: the flags this CPU has
        flags = next(line for line in f if line.startswith(("flags", "Features"))).split()
    assert info["cpu_flags"] == [f for f in ("avx2", "avx512f", "fma") if f in flags]


@pytest.mark.parametrize("env,reason", [({"DLAB_KERNELS": "off"}, "off: DLAB_KERNELS=off"),
                                        ({"CC": "/no/such/cc"}, "no compiler: '/no/such/cc'")])
def test_kernel_info_says_why_it_is_off(monkeypatch, env, reason):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    fused.library.cache_clear()
    try:
        info = fused.kernel_info()
    finally:
        monkeypatch.undo()
        fused.library.cache_clear()
    assert not info["enabled"] and info["reason"].startswith(reason)
    assert info["so_sha256"] == "" and info["cpu_flags"] == []


# Calls the kernel with an absurd thread count: its per-thread scratch cannot be allocated (more
# than the address space), so it must return CPR_NOMEM before any thread starts.
_NOMEM = """
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
f, i32 = ctypes.c_float, ctypes.c_int
n, c, h, o, k = 1, 100, 12, 4, 5
x, w, b = (f * (n * c * h * h))(), (f * (o * c * k * k))(), (f * o)()
out, idx, g = (f * (n * o * 16))(), (ctypes.c_uint8 * (n * o * 16))(), (f * (n * o * 16))()
dw, db, dx = (f * (o * c * k * k))(), (f * o)(), (f * (n * c * h * h))()
lib.cpr_forward.restype = lib.cpr_backward.restype = i32
huge = 2**31 - 1
print(lib.cpr_forward(x, w, b, out, idx, *map(i32, (n, c, h, h, o, k, huge))),
      lib.cpr_backward(x, w, g, out, idx, dw, db, dx, *map(i32, (n, c, h, h, o, k, huge))))
"""


def test_a_failed_allocation_is_a_status_and_a_dlab_error():
    so = _built()
    child = subprocess.run([sys.executable, "-c", _NOMEM, str(so)], capture_output=True,
                           text=True, timeout=60)
    assert child.returncode == 0 and child.stdout.split() == [str(fused.CPR_NOMEM)] * 2, child
    with pytest.raises(DlabError, match=r"out of memory in the backward of a batch of shape "
                                        r"\(256, 10, 12, 12\)"):
        fused._check(fused.CPR_NOMEM, "backward", torch.Size([256, 10, 12, 12]))
    fused._check(0, "forward", (1,))  # success raises nothing

