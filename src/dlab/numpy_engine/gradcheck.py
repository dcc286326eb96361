"""Centred-difference gradient checks and the relative error used to judge them.

`numeric_gradient(f, x, dout)` perturbs each entry of `x` in place by ±h and returns
sum(dout * (f(x+h) - f(x-h))) / 2h, the gradient of <dout, f(x)>. Use float64. Must not import
torch.
"""

from __future__ import annotations

import numpy as np


def numeric_gradient(f, x, dout=None, h=1e-5):
    """Gradient of sum(dout * f()) w.r.t. the array x (which f reads), by centred differences.

    With dout=None, f must return a scalar.
    """
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        pos = np.asarray(f(), dtype=np.float64)
        x[i] = old - h
        neg = np.asarray(f(), dtype=np.float64)
        x[i] = old
        diff = pos - neg
        grad[i] = (diff if dout is None else (diff * dout)).sum() / (2 * h)
        it.iternext()
    return grad


def rel_error(a, b):
    """Norm-wise relative error ||a - b|| / (||a|| + ||b||); 0 when both are zero.

    Norm-wise rather than elementwise: an entry whose true gradient is ~0 would otherwise turn
    the centred difference's absolute error (~1e-11) into a meaningless large ratio.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    den = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / den) if den > 0 else 0.0
