"""Batch normalization for vectors (N, D) and its spatial form for images (N, C, H, W).

Training uses the batch statistics (biased variance) and updates running averages in the
`bn_param` dict (`momentum`, `eps`, `running_mean`, `running_var`); test mode uses the running
averages. Must not import torch.
"""

from __future__ import annotations

import numpy as np

from dlab.errors import DlabError


def batchnorm_forward(x, gamma, beta, bn_param):
    """Args: x (N, D), gamma (D,), beta (D,), bn_param with "mode" "train" or "test".

    Returns (out (N, D), cache).
    """
    mode = bn_param.get("mode", "train")
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    d = x.shape[1]
    if gamma.shape != (d,) or beta.shape != (d,):
        raise DlabError(f"batchnorm gamma {gamma.shape}, beta {beta.shape}; expected ({d},)")
    running_mean = bn_param.setdefault("running_mean", np.zeros(d, dtype=x.dtype))
    running_var = bn_param.setdefault("running_var", np.ones(d, dtype=x.dtype))
    if mode == "train":
        mean = x.mean(axis=0)
        var = x.var(axis=0)
        inv_std = 1.0 / np.sqrt(var + eps)
        xhat = (x - mean) * inv_std
        bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mean
        bn_param["running_var"] = momentum * running_var + (1 - momentum) * var
        return gamma * xhat + beta, (xhat, gamma, inv_std)
    if mode == "test":
        xhat = (x - running_mean) / np.sqrt(running_var + eps)
        return gamma * xhat + beta, None
    raise DlabError(f"batchnorm mode {mode!r}; expected 'train' or 'test'")


def batchnorm_backward(dout, cache):
    """Returns (dx (N, D), dgamma (D,), dbeta (D,)), using the compact closed form."""
    xhat, gamma, inv_std = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    dx = inv_std / n * (n * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))
    return dx, dgamma, dbeta


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Batch norm per channel over (N, H, W). Args: x (N, C, H, W), gamma/beta (C,)."""
    n, c, h, w = x.shape
    flat = x.transpose(0, 2, 3, 1).reshape(-1, c)
    out, cache = batchnorm_forward(flat, gamma, beta, bn_param)
    return out.reshape(n, h, w, c).transpose(0, 3, 1, 2), cache


def spatial_batchnorm_backward(dout, cache):
    n, c, h, w = dout.shape
    flat = dout.transpose(0, 2, 3, 1).reshape(-1, c)
    dx, dgamma, dbeta = batchnorm_backward(flat, cache)
    return dx.reshape(n, h, w, c).transpose(0, 3, 1, 2), dgamma, dbeta
