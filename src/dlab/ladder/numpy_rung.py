"""Rung 1: the numpy engine's MLP and update rules, driven through the ladder interface."""

from __future__ import annotations

import numpy as np

from dlab.ladder.config import LadderConfig, LadderResult, lr_for_step
from dlab.numpy_engine.mlp import MLP
from dlab.numpy_engine.optim import get_update_rule


def train_steps(cfg: LadderConfig, params, batches, rng=None) -> LadderResult:
    cfg.validate()
    model = MLP(cfg.model, {k: v.copy() for k, v in params.items()})
    rule = get_update_rule(cfg.update_rule)
    states = {k: {"momentum": cfg.momentum} for k in model.params}
    rng = rng if rng is not None else np.random.default_rng(cfg.seed)
    losses = []
    for step, (X, y) in enumerate(batches):
        loss, grads = model.loss(X, y, train=True, rng=rng)
        losses.append(loss)
        for k in model.params:
            states[k]["lr"] = lr_for_step(cfg, step)
            model.params[k], states[k] = rule(model.params[k], grads[k], states[k])
    return LadderResult(losses, model.params)
