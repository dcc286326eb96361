"""Update rules `(w, dw, state) -> (w, state)`: SGD, momentum, Nesterov, RMSprop, Adam, Adagrad.

`state` is a dict holding the rule's hyperparameters (`lr`, ...) and its slots (velocity,
moments); missing entries get the defaults below. Rules update `w` in place when they can and
return it. Momentum follows PyTorch's convention v = mu v + dw, w -= lr v, so that a changing
lr acts on the whole step (the same as the Keras form for a constant lr).
Must not import torch.
"""

from __future__ import annotations

import numpy as np

from dlab.errors import DlabError


def _lr(state):
    lr = state.setdefault("lr", 1e-2)
    if not lr > 0:
        raise DlabError(f"learning rate {lr!r}; expected a positive number")
    return lr


def sgd(w, dw, state):
    w -= _lr(state) * dw
    return w, state


def sgd_momentum(w, dw, state):
    lr, mu = _lr(state), state.setdefault("momentum", 0.9)
    v = state.get("velocity")
    v = dw.copy() if v is None else mu * v + dw
    state["velocity"] = v
    w -= lr * v
    return w, state


def nesterov(w, dw, state):
    """Nesterov momentum in PyTorch's form: v = mu v + dw; w -= lr (dw + mu v)."""
    lr, mu = _lr(state), state.setdefault("momentum", 0.9)
    v = state.get("velocity")
    v = dw.copy() if v is None else mu * v + dw
    state["velocity"] = v
    w -= lr * (dw + mu * v)
    return w, state


def rmsprop(w, dw, state):
    lr, rho = _lr(state), state.setdefault("decay_rate", 0.99)
    eps = state.setdefault("epsilon", 1e-8)
    cache = state.get("cache")
    cache = np.zeros_like(w) if cache is None else cache
    cache = rho * cache + (1 - rho) * dw * dw
    state["cache"] = cache
    w -= lr * dw / (np.sqrt(cache) + eps)
    return w, state


def adam(w, dw, state):
    lr, eps = _lr(state), state.setdefault("epsilon", 1e-8)
    b1, b2 = state.setdefault("beta1", 0.9), state.setdefault("beta2", 0.999)
    t = state.get("t", 0) + 1
    m = state.get("m")
    m = np.zeros_like(w) if m is None else m
    v = state.get("v")
    v = np.zeros_like(w) if v is None else v
    m = b1 * m + (1 - b1) * dw
    v = b2 * v + (1 - b2) * dw * dw
    state.update(t=t, m=m, v=v)
    m_hat = m / (1 - b1 ** t)
    v_hat = v / (1 - b2 ** t)
    w -= lr * m_hat / (np.sqrt(v_hat) + eps)
    return w, state


def adagrad(w, dw, state):
    lr, eps = _lr(state), state.setdefault("epsilon", 1e-10)
    cache = state.get("cache")
    cache = dw * dw if cache is None else cache + dw * dw
    state["cache"] = cache
    w -= lr * dw / (np.sqrt(cache) + eps)
    return w, state


UPDATE_RULES = {
    "sgd": sgd, "momentum": sgd_momentum, "nesterov": nesterov,
    "rmsprop": rmsprop, "adam": adam, "adagrad": adagrad,
}


def get_update_rule(name: str):
    """The update rule called `name`; an unknown name is a DlabError."""
    if name not in UPDATE_RULES:
        raise DlabError(f"unknown update rule {name!r}; expected one of {sorted(UPDATE_RULES)}")
    return UPDATE_RULES[name]
