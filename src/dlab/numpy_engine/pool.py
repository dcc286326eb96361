"""2x2-style max pooling: naive loops and a fast stride-trick twin.

Shapes (NCHW): x (N, C, H, W), out (N, C, Ho, Wo) with Ho = 1 + (H - ph) // stride. Ties go to
the first maximum in row-major window order in both versions, so the twins agree exactly.
Must not import torch.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from dlab.errors import DlabError


def _out_size(x_shape, ph, pw, stride):
    h, w = x_shape[2], x_shape[3]
    if ph < 1 or pw < 1 or stride < 1 or ph > h or pw > w:
        raise DlabError(f"max pool {ph}x{pw} stride {stride} on input {h}x{w}; expected a "
                        f"window that fits and positive sizes")
    return 1 + (h - ph) // stride, 1 + (w - pw) // stride


def max_pool_forward_naive(x, pool_h=2, pool_w=2, stride=2):
    """Reference max pooling with loops. Returns (out, cache)."""
    ho, wo = _out_size(x.shape, pool_h, pool_w, stride)
    out = np.empty(x.shape[:2] + (ho, wo), dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            win = x[:, :, i * stride:i * stride + pool_h, j * stride:j * stride + pool_w]
            out[:, :, i, j] = win.max(axis=(2, 3))
    return out, (x, pool_h, pool_w, stride)


def max_pool_backward_naive(dout, cache):
    x, ph, pw, stride = cache
    dx = np.zeros_like(x)
    n, c, ho, wo = dout.shape
    for i in range(ho):
        for j in range(wo):
            win = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw]
            idx = win.reshape(n, c, -1).argmax(axis=2)
            a, b = np.unravel_index(idx, (ph, pw))
            nn, cc = np.indices((n, c))
            dx[nn, cc, i * stride + a, j * stride + b] += dout[:, :, i, j]
    return dx


def max_pool_forward_fast(x, pool_h=2, pool_w=2, stride=2):
    """Max pooling over a stride-trick window view; stores the argmax for the backward pass."""
    ho, wo = _out_size(x.shape, pool_h, pool_w, stride)
    x = np.ascontiguousarray(x)
    n, c = x.shape[:2]
    sn, sc, sh, sw = x.strides
    view = as_strided(x, shape=(n, c, ho, wo, pool_h, pool_w),
                      strides=(sn, sc, sh * stride, sw * stride, sh, sw), writeable=False)
    flat = view.reshape(n, c, ho, wo, pool_h * pool_w)
    idx = flat.argmax(axis=4)
    out = np.take_along_axis(flat, idx[..., None], axis=4)[..., 0]
    return out, (x.shape, idx, pool_h, pool_w, stride)


def max_pool_backward_fast(dout, cache):
    """Scatter dout to the argmax positions, one strided add per window offset."""
    x_shape, idx, ph, pw, stride = cache
    dx = np.zeros(x_shape, dtype=dout.dtype)
    ho, wo = dout.shape[2], dout.shape[3]
    for a in range(ph):
        for b in range(pw):
            hit = dout * (idx == a * pw + b)
            dx[:, :, a:a + stride * ho:stride, b:b + stride * wo:stride] += hit
    return dx
