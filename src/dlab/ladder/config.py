"""The one config shared by every rung of the MLP ladder, initial weights, batches, results.

Weights are numpy arrays named like the numpy engine's (`W1` (D, H1), `b1`, ...); rungs convert
them. Batches are (X (B, D), y (B,)) numpy pairs; the lr for step t follows the shared schedule
(`lr_for_step`). Must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dlab.errors import DlabError
from dlab.numpy_engine.mlp import MLPConfig, init_mlp_params
from dlab.numpy_engine.schedule import ScheduleConfig, lr_at

RULES = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adagrad")


@dataclass(frozen=True)
class LadderConfig:
    model: MLPConfig = field(default_factory=lambda: MLPConfig(hidden=(128, 64),
                                                               dropout=(0.0, 0.0)))
    update_rule: str = "momentum"
    lr: float = 0.05
    momentum: float = 0.9
    batch_size: int = 64
    steps_per_epoch: int = 100  # for per-epoch schedules
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    seed: int = 0

    def validate(self) -> None:
        self.model.validate()
        if self.update_rule not in RULES:
            raise DlabError(f"unknown update rule {self.update_rule!r}; expected one of "
                            f"{list(RULES)}")
        if not self.lr > 0:
            raise DlabError(f"learning rate {self.lr!r}; expected a positive number")
        if self.model.activation not in ("relu", "tanh", "sigmoid", "leaky_relu"):
            raise DlabError(f"ladder activation {self.model.activation!r}; expected relu, tanh, "
                            f"sigmoid or leaky_relu")
        if self.model.loss != "softmax":
            raise DlabError(f"ladder loss {self.model.loss!r}; expected 'softmax'")
        self.schedule.validate()


@dataclass
class LadderResult:
    losses: list[float]  # training loss (data + L2 penalty) of each step, before its update
    params: dict[str, np.ndarray]


def initial_params(cfg: LadderConfig) -> dict[str, np.ndarray]:
    return init_mlp_params(cfg.model, np.random.default_rng(cfg.seed))


def lr_for_step(cfg: LadderConfig, step: int) -> float:
    return lr_at(cfg.lr, cfg.schedule, step // cfg.steps_per_epoch, step)


def make_batches(X: np.ndarray, y: np.ndarray, cfg: LadderConfig, steps: int):
    """`steps` shuffled mini-batches (X (B, D), y (B,)), the same for every rung."""
    rng = np.random.default_rng(cfg.seed + 1)
    out = []
    order = rng.permutation(len(X))
    pos = 0
    for _ in range(steps):
        if pos + cfg.batch_size > len(X):
            order, pos = rng.permutation(len(X)), 0
        idx = order[pos:pos + cfg.batch_size]
        pos += cfg.batch_size
        out.append((X[idx].astype(cfg.model.dtype), y[idx]))
    return out
