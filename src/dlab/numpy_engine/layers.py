"""Elementwise and affine layers: affine, ReLU, leaky ReLU, tanh, sigmoid, inverted dropout.

Shapes: x (N, D) for affine after flattening any trailing dims (N, d1, ..., dk); w (D, M),
b (M,). Activations keep the shape of their input. Each op is a forward/backward pair:
`<op>_forward(...) -> (out, cache)`, `<op>_backward(dout, cache) -> dx` (or (dx, dw, db)).
Must not import torch.
"""

from __future__ import annotations

import numpy as np

from dlab.errors import DlabError


def affine_forward(x, w, b):
    """out = x.reshape(N, D) @ w + b.

    Args: x (N, d1..dk) with prod(d) = D; w (D, M); b (M,).
    Returns: out (N, M) and the cache (x, w).
    """
    n = x.shape[0]
    flat = x.reshape(n, -1)
    if flat.shape[1] != w.shape[0] or w.shape[1] != b.shape[0]:
        raise DlabError(f"affine shapes x {x.shape}, w {w.shape}, b {b.shape}; expected "
                        f"x (N, {w.shape[0]}) after flattening and b ({w.shape[1]},)")
    return flat @ w + b, (x, w)


def affine_backward(dout, cache):
    """Returns (dx with x's shape, dw (D, M), db (M,))."""
    x, w = cache
    flat = x.reshape(x.shape[0], -1)
    return (dout @ w.T).reshape(x.shape), flat.T @ dout, dout.sum(axis=0)


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)


def leaky_relu_forward(x, slope=0.01):
    return np.where(x > 0, x, slope * x), (x, slope)


def leaky_relu_backward(dout, cache):
    x, slope = cache
    return np.where(x > 0, dout, slope * dout)


def tanh_forward(x):
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, cache):
    return dout * (1 - cache * cache)


def sigmoid_forward(x):
    # Two branches so that exp never overflows for large |x|.
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1 / (1 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1 + ex)
    return out, out


def sigmoid_backward(dout, cache):
    return dout * cache * (1 - cache)


def check_dropout(p: float) -> None:
    if not 0 <= p < 1:
        raise DlabError(f"dropout rate {p!r}; expected a value in [0, 1) for training")


def dropout_forward(x, p, train=True, rng=None):
    """Inverted dropout: zero each unit with probability `p`, scale the kept ones by 1/(1-p).

    Returns (out, cache); at test time (train=False) the layer is the identity.
    """
    check_dropout(p)
    if not train or p == 0:
        return x, None
    rng = rng if rng is not None else np.random.default_rng()
    mask = (rng.random(x.shape) >= p).astype(x.dtype) / x.dtype.type(1 - p)
    return x * mask, mask


def dropout_backward(dout, cache):
    return dout if cache is None else dout * cache


ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
    "tanh": (tanh_forward, tanh_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
}


def get_activation(name: str):
    """(forward, backward) of a named activation; an unknown name is a DlabError."""
    if name not in ACTIVATIONS:
        raise DlabError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]
