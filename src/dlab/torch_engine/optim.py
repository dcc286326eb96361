"""Optimizers and learning-rate schedules from an `OptimConfig`.

Schedules are one per-step multiplier of the configured lr (LambdaLR), so every schedule
composes with linear warm-up and resumes exactly from the step count stored in a checkpoint.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from dlab.config import OptimConfig
from dlab.errors import DlabError


def param_groups(model: torch.nn.Module, cfg: OptimConfig) -> list[dict]:
    """The model's parameters in optimizer groups: one; with `optim.norm_lr_scale = s != 1`,
    those of its normalization layers (batch norm's shift and scale) in a second group at lr × s
    and weight decay ÷ s, so that their decay per step (lr × wd) is unchanged (airbench's bias
    scaler)."""
    if cfg.norm_lr_scale == 1.0:  # one group of every parameter, as checkpoints have it
        return [{"params": list(model.parameters())}]
    norm_types = (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm)
    norm = {id(p) for m in model.modules() if isinstance(m, norm_types)
            for p in m.parameters(recurse=False)}
    s = cfg.norm_lr_scale
    return [{"params": [p for p in model.parameters() if id(p) not in norm]},
            {"params": [p for p in model.parameters() if id(p) in norm], "lr": cfg.lr * s,
             "weight_decay": cfg.weight_decay / s}]


def build_optimizer(cfg: OptimConfig, params) -> torch.optim.Optimizer:
    """The optimizer named by `cfg.name` with its resolved lr (see dlab.config); `params` are
    parameters or `param_groups`."""
    wd = cfg.weight_decay
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=wd)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=wd)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=wd)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=wd)
    if cfg.name == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, weight_decay=wd)
    if cfg.name == "adadelta":
        return torch.optim.Adadelta(params, lr=cfg.lr, weight_decay=wd)
    raise DlabError(f"unknown optimizer {cfg.name!r}")


def lr_factor(cfg: OptimConfig, steps_per_epoch: int, epochs: int) -> Callable[[int], float]:
    """The multiplier of the base lr at optimizer step `step` (0-based)."""
    total = max(1, steps_per_epoch * epochs)
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))

    def schedule(step: int) -> float:
        epoch = step // max(1, steps_per_epoch)
        t = min(1.0, step / total)
        if cfg.schedule == "constant":
            return 1.0
        if cfg.schedule == "step":
            return cfg.gamma ** (epoch // cfg.step_epochs)
        if cfg.schedule == "exponential":
            return cfg.gamma ** epoch
        if cfg.schedule == "cosine":
            return cfg.min_lr_factor + (1 - cfg.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * t))
        if cfg.schedule == "onecycle":
            # Smith's one-cycle: up from lr/25 for 30% of the steps, cosine down to lr/2.5e4.
            peak = 0.3
            if t < peak:
                return 1 / 25 + (1 - 1 / 25) * 0.5 * (1 - math.cos(math.pi * t / peak))
            u = (t - peak) / (1 - peak)
            return 1 / 2.5e4 + (1 - 1 / 2.5e4) * 0.5 * (1 + math.cos(math.pi * u))
        if cfg.schedule == "triangle":
            # airbench94's: linear from 0.2 up to 1 at 23% of the steps, then down to 0.07
            peak = 0.23
            if t < peak:
                return 0.2 + 0.8 * t / peak
            return 1.0 - 0.93 * (t - peak) / (1 - peak)
        raise DlabError(f"unknown schedule {cfg.schedule!r}")

    def with_warmup(step: int) -> float:
        factor = schedule(step)
        if warmup and step < warmup:
            factor *= (step + 1) / warmup
        return factor

    return with_warmup


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, steps_per_epoch: int,
                    epochs: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, steps_per_epoch, epochs))
