"""Losses over a batch, each returning (mean loss, dx), and the L2 weight penalty.

Shapes: scores x (N, K), labels y (N,) int in [0, K); MSE takes targets with x's shape.
Losses are means over the batch. Must not import torch.
"""

from __future__ import annotations

import numpy as np

from dlab.errors import DlabError


def _check_labels(x, y):
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise DlabError(f"scores {x.shape} and labels {y.shape}; expected (N, K) and (N,)")


def softmax_loss(x, y):
    """Softmax cross-entropy. Returns (loss, dx (N, K))."""
    _check_labels(x, y)
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = x.shape[0]
    loss = -log_probs[np.arange(n), y].mean()
    dx = np.exp(log_probs)
    dx[np.arange(n), y] -= 1
    return loss, dx / n


def svm_loss(x, y, delta=1.0):
    """Multiclass SVM hinge loss (Weston-Watkins). Returns (loss, dx (N, K))."""
    _check_labels(x, y)
    n = x.shape[0]
    correct = x[np.arange(n), y][:, None]
    margins = np.maximum(0, x - correct + delta)
    margins[np.arange(n), y] = 0
    loss = margins.sum() / n
    dx = (margins > 0).astype(x.dtype)
    dx[np.arange(n), y] -= dx.sum(axis=1)
    return loss, dx / n


def mse_loss(x, target):
    """Mean squared error, averaged over all elements. Returns (loss, dx)."""
    if x.shape != target.shape:
        raise DlabError(f"MSE prediction {x.shape} and target {target.shape}; expected equal")
    diff = x - target
    return (diff * diff).mean(), 2 * diff / diff.size


def l2_penalty(weights, reg):
    """0.5 * reg * sum of squared weights and its gradients (one per array, same order)."""
    if reg < 0:
        raise DlabError(f"L2 regularization {reg!r}; expected a value >= 0")
    loss = 0.5 * reg * sum(float((w * w).sum()) for w in weights)
    return loss, [reg * w for w in weights]


LOSSES = {"softmax": softmax_loss, "svm": svm_loss}


def get_loss(name: str):
    if name not in LOSSES:
        raise DlabError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}")
    return LOSSES[name]
