"""Conv → 2×2 max-pool → ReLU as one CPU kernel, for the assignment's net and its variants.

`fuse(model, device)` replaces every `conv, MaxPool2d(2), ReLU` run of an `nn.Sequential` (the
default net has two) with one `ConvPoolReLU` layer and two `nn.Identity`, when the model runs on
the CPU and the kernel in `conv_pool_relu.c` can be built. The parameters are the same objects
under the same names, so state dicts, checkpoints and optimizers see no difference; the outputs
and gradients equal the three PyTorch ops' up to float rounding (see the C file).

The kernel is compiled once per machine with the system C compiler (`$CC`, else `cc`) into
`$XDG_CACHE_HOME/dlab/kernels` and loaded with ctypes. Without a compiler, or with
`DLAB_KERNELS=off`, models keep the PyTorch ops: same results up to rounding, slower.
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
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

SOURCE = Path(__file__).with_name("conv_pool_relu.c")
FLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-fopenmp"]
MAX_KERNEL, MAX_POOLED_WIDTH = 8, 16  # the C kernel's limits


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dlab" / "kernels"


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        return platform.processor()


def _compile(compiler: str, target: Path) -> None:
    """Build the shared library into `target` atomically (a concurrent build loses nothing)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".so.tmp")
    os.close(fd)
    try:
        subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", tmp], check=True,
                       capture_output=True, text=True, timeout=120)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@lru_cache(maxsize=1)
def library() -> ctypes.CDLL | None:
    """The compiled kernel, or None (with one warning) where it cannot be built or is off."""
    if os.environ.get("DLAB_KERNELS", "on").lower() in ("off", "0", "no"):
        return None
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if compiler is None:
        print("dlab: no C compiler found; conv+pool+relu layers run as PyTorch ops (slower)",
              file=sys.stderr)
        return None
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True,
                                 timeout=60).stdout
        # -march=native: a library built on one CPU may not run on another sharing this home
        key = hashlib.sha256(SOURCE.read_bytes() + " ".join(FLAGS).encode() + version.encode()
                             + _cpu_flags().encode())
        target = _cache_dir() / f"conv_pool_relu-{key.hexdigest()[:16]}.so"
        if not target.exists():
            _compile(compiler, target)
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", None) or exc
        print(f"dlab: could not build the conv+pool+relu kernel ({str(detail).strip()[:200]}); "
              "those layers run as PyTorch ops (slower)", file=sys.stderr)
        return None
    ptr, i32 = ctypes.c_void_p, ctypes.c_int
    lib.cpr_forward.argtypes = [ptr] * 5 + [i32] * 7
    lib.cpr_backward.argtypes = [ptr] * 8 + [i32] * 7
    return lib


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
        library().cpr_forward(_ptr(x), _ptr(weight), _ptr(bias), _ptr(out), _ptr(idx),
                              n, c, h, w, o, k, torch.get_num_threads())
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
        library().cpr_backward(_ptr(x), _ptr(weight), _ptr(grad), _ptr(out), _ptr(idx),
                               _ptr(dw), _ptr(db), _ptr(dx), n, c, h, w, o, k,
                               torch.get_num_threads())
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
