"""Rung 3: the MLP as raw PyTorch tensors with autograd computing the gradients.

Same parameters and update formulas as the hand-written rung (`torch_manual.apply_update`);
only the backward pass is left to autograd.
"""

from __future__ import annotations

import torch

from dlab.ladder.config import LadderConfig, LadderResult, lr_for_step
from dlab.ladder.torch_manual import _act, _dropout_mask, apply_update


def forward_loss(cfg: LadderConfig, P, X, y, gen):
    m = cfg.model
    L = len(m.hidden) + 1
    mask = _dropout_mask(X.shape, m.input_dropout, gen, X.dtype)
    h = X if mask is None else X * mask
    for i in range(1, L):
        h = _act(m.activation, h @ P[f"W{i}"] + P[f"b{i}"])
        mask = _dropout_mask(h.shape, m.dropout[i - 1], gen, h.dtype)
        h = h if mask is None else h * mask
    scores = h @ P[f"W{L}"] + P[f"b{L}"]
    loss = torch.nn.functional.cross_entropy(scores, y)
    return loss + 0.5 * m.reg * sum((P[f"W{i}"] ** 2).sum() for i in range(1, L + 1))


def train_steps(cfg: LadderConfig, params, batches) -> LadderResult:
    cfg.validate()
    P = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    gen = torch.Generator().manual_seed(cfg.seed)
    states = {k: {} for k in P}
    losses = []
    for step, (X, y) in enumerate(batches):
        loss = forward_loss(cfg, P, torch.from_numpy(X), torch.from_numpy(y), gen)
        for p in P.values():
            p.grad = None
        loss.backward()
        losses.append(loss.item())
        with torch.no_grad():
            for k, p in P.items():
                apply_update(cfg, p, p.grad, states[k], lr_for_step(cfg, step))
    return LadderResult(losses, {k: v.detach().numpy() for k, v in P.items()})
