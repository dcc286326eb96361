"""2-D convolution (cross-correlation, as in every DL library): naive loops and a fast twin.

Shapes (NCHW): x (N, C, H, W), w (F, C, HH, WW), b (F,), out (N, F, Ho, Wo) with
Ho = 1 + (H + 2 pad - HH) // stride and Wo likewise. `conv_forward_naive` is the reference;
`conv_forward_im2col` builds the column matrix from a stride-trick view of the padded input (no
Python loop over pixels) and turns the layer into one matrix product; its backward scatters the
column gradients back with one strided add per kernel offset (HH * WW adds, no np.add.at).
The twins are pinned to each other in tests. Must not import torch.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from dlab.errors import DlabError


def _out_size(x_shape, w_shape, stride, pad):
    n, c, h, w = x_shape
    f, cw, hh, ww = w_shape
    if c != cw:
        raise DlabError(f"conv input has {c} channels but the filters expect {cw}")
    if stride < 1 or pad < 0:
        raise DlabError(f"conv stride {stride}, pad {pad}; expected stride >= 1 and pad >= 0")
    ho, wo = 1 + (h + 2 * pad - hh) // stride, 1 + (w + 2 * pad - ww) // stride
    if ho < 1 or wo < 1:
        raise DlabError(f"conv filter {hh}x{ww} does not fit input {h}x{w} with pad {pad}")
    return ho, wo


def _pad(x, pad):
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x


def conv_forward_naive(x, w, b, stride=1, pad=0):
    """Reference convolution: the four explicit loops (image, filter, output row, output
    column), one window dot product each. Returns (out, cache)."""
    ho, wo = _out_size(x.shape, w.shape, stride, pad)
    xp = _pad(x, pad)
    n, f, hh, ww = x.shape[0], w.shape[0], w.shape[2], w.shape[3]
    out = np.zeros((n, f, ho, wo), dtype=np.result_type(x, w))
    for m in range(n):
        for k in range(f):
            for i in range(ho):
                for j in range(wo):
                    window = xp[m, :, i * stride:i * stride + hh, j * stride:j * stride + ww]
                    out[m, k, i, j] = np.sum(window * w[k]) + b[k]
    return out, (x, w, b, stride, pad)


def conv_backward_naive(dout, cache):
    """Returns (dx, dw, db) with the shapes of x, w, b; the same four loops as the forward."""
    x, w, b, stride, pad = cache
    xp = _pad(x, pad)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    n, f, hh, ww = x.shape[0], w.shape[0], w.shape[2], w.shape[3]
    ho, wo = dout.shape[2], dout.shape[3]
    for m in range(n):
        for k in range(f):
            for i in range(ho):
                for j in range(wo):
                    rows = slice(i * stride, i * stride + hh)
                    cols = slice(j * stride, j * stride + ww)
                    g = dout[m, k, i, j]
                    dw[k] += xp[m, :, rows, cols] * g
                    dxp[m, :, rows, cols] += w[k] * g
    h, wd = x.shape[2], x.shape[3]
    return dxp[:, :, pad:pad + h, pad:pad + wd], dw, dout.sum(axis=(0, 2, 3))


def conv_forward_im2col(x, w, b, stride=1, pad=0):
    """Fast convolution: stride-trick im2col + one matmul. Returns (out, cache)."""
    ho, wo = _out_size(x.shape, w.shape, stride, pad)
    xp = np.ascontiguousarray(_pad(x, pad))
    n, c = x.shape[:2]
    f, _, hh, ww = w.shape
    sn, sc, sh, sw = xp.strides
    view = as_strided(xp, shape=(c, hh, ww, n, ho, wo),
                      strides=(sc, sh, sw, sn, sh * stride, sw * stride), writeable=False)
    cols = view.reshape(c * hh * ww, n * ho * wo)  # copies: the view is not contiguous
    out = w.reshape(f, -1) @ cols + b[:, None]
    # A transposed view, not a copy: consumers accept any strides.
    out = out.reshape(f, n, ho, wo).transpose(1, 0, 2, 3)
    return out, (x.shape, xp.shape, w, cols, stride, pad)


def conv_backward_im2col(dout, cache, compute_dx=True):
    """Returns (dx, dw, db) for `conv_forward_im2col`; dx is None when compute_dx is False
    (a first layer needs no input gradient)."""
    x_shape, xp_shape, w, cols, stride, pad = cache
    f, c, hh, ww = w.shape
    n, _, ho, wo = dout.shape
    dout_r = dout.transpose(1, 0, 2, 3).reshape(f, -1)
    dw = (dout_r @ cols.T).reshape(w.shape)
    db = dout_r.sum(axis=1)
    if not compute_dx:
        return None, dw, db
    dcols = (w.reshape(f, -1).T @ dout_r).reshape(c, hh, ww, n, ho, wo)
    dxp = np.zeros((xp_shape[1], xp_shape[0], xp_shape[2], xp_shape[3]), dtype=dcols.dtype)
    for i in range(hh):
        for j in range(ww):
            dxp[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += dcols[:, i, j]
    h, wd = x_shape[2], x_shape[3]
    return dxp[:, :, pad:pad + h, pad:pad + wd].transpose(1, 0, 2, 3), dw, db
