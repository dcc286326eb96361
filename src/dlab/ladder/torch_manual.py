"""Rung 2: the MLP on PyTorch tensors with hand-written gradients (autograd never used).

Shapes: X (B, D), W_l (D_{l-1}, D_l) as in the numpy engine. Also holds the update rules on
tensors, shared with the autograd rung (`apply_update`).
"""

from __future__ import annotations

import torch

from dlab.ladder.config import LadderConfig, LadderResult, lr_for_step


def _act(name, z):
    if name == "relu":
        return z.clamp_min(0)
    if name == "leaky_relu":
        return torch.where(z > 0, z, 0.01 * z)
    if name == "tanh":
        return torch.tanh(z)
    return torch.sigmoid(z)


def _act_grad(name, z, a, da):
    if name == "relu":
        return da * (z > 0)
    if name == "leaky_relu":
        return torch.where(z > 0, da, 0.01 * da)
    if name == "tanh":
        return da * (1 - a * a)
    return da * a * (1 - a)


def _dropout_mask(shape, p, gen, dtype):
    if p == 0:
        return None
    return (torch.rand(shape, generator=gen, dtype=dtype) >= p).to(dtype) / (1 - p)


def apply_update(cfg: LadderConfig, w, dw, state, lr):
    """The update rules in place on tensors; the same formulas as `dlab.numpy_engine.optim`."""
    rule, mu = cfg.update_rule, cfg.momentum
    if rule == "sgd":
        w -= lr * dw
    elif rule in ("momentum", "nesterov"):
        v = state["v"] = dw.clone() if "v" not in state else mu * state["v"] + dw
        w -= lr * (dw + mu * v if rule == "nesterov" else v)
    elif rule == "rmsprop":
        c = state["c"] = 0.99 * state.get("c", torch.zeros_like(w)) + 0.01 * dw * dw
        w -= lr * dw / (c.sqrt() + 1e-8)
    elif rule == "adagrad":
        c = state["c"] = state.get("c", torch.zeros_like(w)) + dw * dw
        w -= lr * dw / (c.sqrt() + 1e-10)
    else:
        t = state["t"] = state.get("t", 0) + 1
        m = state["m"] = 0.9 * state.get("m", torch.zeros_like(w)) + 0.1 * dw
        v = state["v"] = 0.999 * state.get("v", torch.zeros_like(w)) + 0.001 * dw * dw
        w -= lr * (m / (1 - 0.9 ** t)) / ((v / (1 - 0.999 ** t)).sqrt() + 1e-8)


def loss_and_grads(cfg: LadderConfig, P, X, y, gen):
    """Forward and hand-written backward. Returns (loss tensor, grads dict)."""
    m = cfg.model
    L = len(m.hidden) + 1
    in_mask = _dropout_mask(X.shape, m.input_dropout, gen, X.dtype)
    h = X if in_mask is None else X * in_mask
    cache = []
    for i in range(1, L):
        z = h @ P[f"W{i}"] + P[f"b{i}"]
        a = _act(m.activation, z)
        mask = _dropout_mask(a.shape, m.dropout[i - 1], gen, a.dtype)
        cache.append((h, z, a, mask))
        h = a if mask is None else a * mask
    scores = h @ P[f"W{L}"] + P[f"b{L}"]
    log_p = scores - torch.logsumexp(scores, dim=1, keepdim=True)
    n = X.shape[0]
    loss = -log_p[torch.arange(n), y].mean()
    loss = loss + 0.5 * m.reg * sum((P[f"W{i}"] ** 2).sum() for i in range(1, L + 1))
    d = log_p.exp()
    d[torch.arange(n), y] -= 1
    d /= n
    G = {f"W{L}": h.T @ d, f"b{L}": d.sum(0)}
    dh = d @ P[f"W{L}"].T
    for i in range(L - 1, 0, -1):
        h_in, z, a, mask = cache[i - 1]
        dz = _act_grad(m.activation, z, a, dh if mask is None else dh * mask)
        G[f"W{i}"], G[f"b{i}"] = h_in.T @ dz, dz.sum(0)
        dh = dz @ P[f"W{i}"].T
    for i in range(1, L + 1):
        G[f"W{i}"] += m.reg * P[f"W{i}"]
    return loss, G


def train_steps(cfg: LadderConfig, params, batches) -> LadderResult:
    cfg.validate()
    P = {k: torch.tensor(v) for k, v in params.items()}
    gen = torch.Generator().manual_seed(cfg.seed)
    states = {k: {} for k in P}
    losses = []
    for step, (X, y) in enumerate(batches):
        loss, G = loss_and_grads(cfg, P, torch.from_numpy(X), torch.from_numpy(y), gen)
        losses.append(loss.item())
        for k in P:
            apply_update(cfg, P[k], G[k], states[k], lr_for_step(cfg, step))
    return LadderResult(losses, {k: v.numpy() for k, v in P.items()})
