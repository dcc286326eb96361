"""Conv → 2×2 max-pool → ReLU as one CPU kernel, for the assignment's net and its variants.

`fuse(model, device)` replaces every `conv, MaxPool2d(2), ReLU` run of an `nn.Sequential` (the
default net has two) with one `ConvPoolReLU` layer and two `nn.Identity`, when the model runs on
the CPU and the kernel in `conv_pool_relu.c` can be built. The parameters are the same objects
under the same names, so state dicts, checkpoints and optimizers see no difference; the outputs
and gradients equal the three PyTorch ops' up to float rounding (see the C file).

The kernel is compiled once per machine with the system C compiler (`$CC`, else `cc`) into
`$XDG_CACHE_HOME/dlab/kernels` and loaded with ctypes. The library's SHA-256 is recorded beside
it; before a process loads it, the checksum is compared and a child process loads it and runs it
on a tiny input (a damaged library kills that child, not the training). A library that fails
either check is rebuilt once. Without a compiler, with a build that fails, or with
`DLAB_KERNELS=off`, models keep the PyTorch ops (one warning line): same results up to rounding,
slower. Results do not depend on the thread count (see the C file). `kernel_info()` says which
it is, for the run manifest.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from dlab.errors import DlabError
from dlab.io import atomic_write_bytes
from dlab.paths import cache_root

SOURCE = Path(__file__).with_name("conv_pool_relu.c")
FLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-fopenmp"]
MAX_KERNEL, MAX_POOLED_WIDTH = 8, 16  # the C kernel's limits
CPR_NOMEM = 1  # the C entry points' status for a failed allocation
ISA_BITS = {"avx2": 1, "avx512f": 2, "fma": 4}  # cpr_isa()'s bits

# Run by the trial load in a child process: load the library, pool a 6x6 image of ones convolved
# with a 3x3 kernel of ones (every output 9) on two threads; exit 0 only if that is what it gives.
_TRIAL = """
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
f = ctypes.c_float
x, w, b = (f * 36)(*[1.0] * 36), (f * 9)(*[1.0] * 9), (f * 1)()
out, idx = (f * 4)(), (ctypes.c_uint8 * 4)()
lib.cpr_forward.restype = ctypes.c_int
rc = lib.cpr_forward(x, w, b, out, idx, *map(ctypes.c_int, (1, 1, 6, 6, 1, 3, 2)))
sys.exit(0 if rc == 0 and list(out) == [9.0] * 4 else 3)
"""


@dataclass(frozen=True)
class _Kernel:
    """This process's kernel: the loaded library, or None and why not."""

    lib: ctypes.CDLL | None
    reason: str = ""  # why it is not loaded; "" when it is
    compiler: str = ""
    compiler_version: str = ""
    sha256: str = ""


class _BuildError(Exception):
    """The kernel could not be built or did not pass its trial load."""


def _cache_dir() -> Path:
    return cache_root() / "kernels"


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        return platform.processor()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _checksum_file(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _trial_load(path: Path) -> str:
    """Load `path` and run it on a tiny input in a child process; "" if that worked, else what
    went wrong."""
    try:
        child = subprocess.run([sys.executable, "-c", _TRIAL, str(path)], capture_output=True,
                               text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "its trial load timed out"
    if child.returncode == 0:
        return ""
    last = (child.stderr.strip().splitlines() or [""])[-1][:200]
    if child.returncode < 0:
        return f"its trial load died of signal {-child.returncode}"
    return f"its trial load failed (exit {child.returncode}{': ' + last if last else ''})"


def _problem(target: Path) -> str:
    """Why the cached library at `target` must not be loaded; "" if it may."""
    if not target.exists():
        return "not built"
    try:
        recorded = _checksum_file(target).read_text().strip()
    except OSError:
        return "no checksum recorded"
    if recorded != _sha256(target):
        return "its checksum does not match"
    return _trial_load(target)


def _compile(compiler: str, target: Path) -> None:
    """Build the shared library into `target` atomically (a concurrent build loses nothing),
    after a trial load; its checksum is written beside it first."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".so.tmp")
    os.close(fd)
    try:
        try:
            subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", tmp], check=True,
                           capture_output=True, text=True, timeout=120)
        except subprocess.CalledProcessError as exc:
            raise _BuildError((exc.stderr or str(exc)).strip()[:200]) from exc
        problem = _trial_load(Path(tmp))
        if problem:
            raise _BuildError(f"the compiler's output: {problem}")
        with open(tmp, "rb") as fh:  # on disk before it is renamed over the target
            os.fsync(fh.fileno())
        # a reader between these two writes sees a mismatch and rebuilds: wasted work only
        atomic_write_bytes(_checksum_file(target), (_sha256(Path(tmp)) + "\n").encode())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _compiler_version(compiler: str) -> str:
    return subprocess.run([compiler, "--version"], capture_output=True, text=True,
                          timeout=60).stdout


def _fallback(reason: str, **known: str) -> _Kernel:
    print(f"dlab: could not build the conv+pool+relu kernel ({reason}); "
          "those layers run as PyTorch ops (slower)", file=sys.stderr)
    return _Kernel(None, f"failed build: {reason}", **known)


@lru_cache(maxsize=1)
def _load() -> _Kernel:
    """Build (if needed), verify and load the kernel once per process."""
    if os.environ.get("DLAB_KERNELS", "on").lower() in ("off", "0", "no"):
        return _Kernel(None, "off: DLAB_KERNELS=" + os.environ["DLAB_KERNELS"])
    name = os.environ.get("CC", "cc")
    compiler = shutil.which(name)
    if compiler is None:
        print("dlab: no C compiler found; conv+pool+relu layers run as PyTorch ops (slower)",
              file=sys.stderr)
        return _Kernel(None, f"no compiler: {name!r} not found")
    version = ""
    try:
        version = _compiler_version(compiler)
        # -march=native: a library built on one CPU may not run on another sharing this home
        key = hashlib.sha256(SOURCE.read_bytes() + " ".join(FLAGS).encode() + version.encode()
                             + _cpu_flags().encode())
        target = _cache_dir() / f"conv_pool_relu-{key.hexdigest()[:16]}.so"
        if _problem(target):
            _compile(compiler, target)  # once: a second failure falls back
        lib = ctypes.CDLL(str(target))
        sha = _sha256(target)
    except (OSError, subprocess.SubprocessError, _BuildError) as exc:
        detail = getattr(exc, "stderr", None) or exc
        return _fallback(str(detail).strip()[:200], compiler=compiler,
                         compiler_version=_first_line(version))
    ptr, i32 = ctypes.c_void_p, ctypes.c_int
    lib.cpr_forward.argtypes = [ptr] * 5 + [i32] * 7
    lib.cpr_backward.argtypes = [ptr] * 8 + [i32] * 7
    lib.cpr_forward.restype = lib.cpr_backward.restype = lib.cpr_isa.restype = i32
    return _Kernel(lib, "", compiler, _first_line(version), sha)


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


def library() -> ctypes.CDLL | None:
    """The compiled kernel, or None (with one warning) where it cannot be built or is off."""
    return _load().lib


library.cache_clear = _load.cache_clear  # forgets this process's kernel (tests, benchmarks)


def kernel_info() -> dict:
    """The kernel's state, for the run manifest.

    Returns:
        enabled: whether fused layers run the C kernel; reason: why not ("" when enabled), one of
        "off: ...", "no compiler: ...", "failed build: ..."; compiler and compiler_version (its
        first line); so_sha256 of the loaded library; cpu_flags: those of avx2, avx512f, fma
        the library was built for; omp_threads: the threads the kernel runs on now.
    """
    k = _load()
    isa = k.lib.cpr_isa() if k.lib is not None else 0
    return {"enabled": k.lib is not None, "reason": k.reason, "compiler": k.compiler,
            "compiler_version": k.compiler_version, "so_sha256": k.sha256,
            "cpu_flags": [name for name, bit in ISA_BITS.items() if isa & bit],
            "omp_threads": torch.get_num_threads()}


def _check(status: int, what: str, shape: tuple) -> None:
    if status == CPR_NOMEM:
        raise DlabError(f"conv+pool+relu kernel: out of memory in the {what} of a batch of "
                        f"shape {tuple(shape)}; use a smaller batch or DLAB_KERNELS=off")
    if status != 0:
        raise DlabError(f"conv+pool+relu kernel: {what} returned status {status}, expected 0")


def _ptr(t: torch.Tensor | None) -> ctypes.c_void_p | None:
    return None if t is None else ctypes.c_void_p(t.data_ptr())


class _ConvPoolReLUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        x, weight, bias = (t.detach().contiguous() for t in (x, weight, bias))
        n, c, h, w = x.shape
        o, k = weight.shape[0], weight.shape[2]
        hp, wp = (h - k + 1) // 2, (w - k + 1) // 2
        out = torch.empty(n, o, hp, wp, dtype=torch.float32)
        idx = torch.empty(n, o, hp, wp, dtype=torch.uint8)
        _check(library().cpr_forward(_ptr(x), _ptr(weight), _ptr(bias), _ptr(out), _ptr(idx),
                                     n, c, h, w, o, k, torch.get_num_threads()),
               "forward", x.shape)
        ctx.save_for_backward(x, weight, out, idx)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight, out, idx = ctx.saved_tensors
        n, c, h, w = x.shape
        o, k = weight.shape[0], weight.shape[2]
        grad = grad.contiguous()  # held here: the kernel reads it through a bare pointer
        dw, db = torch.empty_like(weight), torch.empty(o, dtype=torch.float32)
        dx = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        _check(library().cpr_backward(_ptr(x), _ptr(weight), _ptr(grad), _ptr(out), _ptr(idx),
                                      _ptr(dw), _ptr(db), _ptr(dx), n, c, h, w, o, k,
                                      torch.get_num_threads()),
               "backward", x.shape)
        return dx, dw, db


class ConvPoolReLU(nn.Conv2d):
    """relu(max_pool2d(conv(x), 2)) in one kernel; the convolution's own parameters."""

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> ConvPoolReLU:
        fused = cls(conv.in_channels, conv.out_channels, conv.kernel_size, device="meta")
        fused.weight, fused.bias = conv.weight, conv.bias
        return fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._kernel_takes(x):
            return F.relu(F.max_pool2d(super().forward(x), 2))  # the same, as PyTorch ops
        return _ConvPoolReLUFn.apply(x, self.weight, self.bias)

    def _kernel_takes(self, x: torch.Tensor) -> bool:
        """Whether the C kernel computes this layer on `x`; else PyTorch's ops do (and raise
        PyTorch's own errors for inputs that do not fit the layer)."""
        k = self.kernel_size[0]
        pooled = [(size - k + 1) // 2 for size in x.shape[-2:]]
        return (library() is not None and _conv_ok(self) and x.dim() == 4
                and x.shape[1] == self.in_channels
                and all(t.device.type == "cpu" and t.dtype == torch.float32
                        for t in (x, self.weight, self.bias))
                and min(pooled) >= 1 and pooled[1] <= MAX_POOLED_WIDTH)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", then max-pool 2 and relu (fused)"


def _conv_ok(conv: nn.Conv2d) -> bool:
    """A convolution the kernel computes: valid, stride 1, square kernel <= 8, with a bias."""
    return (conv.stride == (1, 1) and conv.padding in ((0, 0), "valid")
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.bias is not None
            and conv.kernel_size[0] == conv.kernel_size[1] <= MAX_KERNEL)


def _fusable(conv: nn.Module, pool: nn.Module, act: nn.Module) -> bool:
    return (type(conv) is nn.Conv2d and type(pool) is nn.MaxPool2d and type(act) is nn.ReLU
            and _conv_ok(conv) and conv.weight.dtype == torch.float32
            and pool.kernel_size in (2, (2, 2)) and pool.stride in (2, (2, 2), None)
            and pool.padding in (0, (0, 0)) and pool.dilation in (1, (1, 1))
            and not pool.ceil_mode and not pool.return_indices)


def fuse(model: nn.Module, device: torch.device) -> int:
    """Fuse `model`'s conv → max-pool 2 → ReLU runs in place (CPU only, when the kernel builds);
    returns how many were fused. A fused layer given an input the kernel does not take (another
    device or dtype, no batch dimension, a pooled width over 16) runs the PyTorch ops instead."""
    if device.type != "cpu" or library() is None:
        return 0
    count = 0
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b, c in zip(names, names[1:], names[2:]):
            conv, pool, act = seq._modules[a], seq._modules[b], seq._modules[c]
            if _fusable(conv, pool, act):
                seq._modules[a] = ConvPoolReLU.from_conv(conv)
                seq._modules[b], seq._modules[c] = nn.Identity(), nn.Identity()
                count += 1
    return count
