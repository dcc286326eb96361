"""Keep freed tensor memory in the process instead of handing it back to the kernel.

glibc's malloc serves blocks above its mmap threshold (128 KiB at first, raised dynamically
up to 32 MiB) with a fresh `mmap` and unmaps them on `free`. A training step allocates and
frees activations and gradients of a few MiB each, so every step page-faults its whole working
set back in: measured ~190,000 page faults per second, a fifth of the CPU time in the kernel,
during Q13's training. Fixing the thresholds once lets malloc reuse those blocks instead.

`keep_freed_memory()` is called by the training and evaluation entry points; it is a no-op
outside Linux/glibc. Set DLAB_MALLOC=default to leave malloc alone (e.g. to compare).
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>
MMAP_THRESHOLD = 32 << 20  # glibc's maximum: blocks below 32 MiB come from the reused heap
TRIM_THRESHOLD = 1 << 30  # give memory back only when 1 GiB at the top of the heap is free

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (once per process); True when they are set."""
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if os.environ.get("DLAB_MALLOC", "") == "default" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
