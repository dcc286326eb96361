"""Learning-rate schedules: constant, step and exponential decay, per epoch or per batch.

`lr_at(cfg, epoch, iteration)` gives the lr for a step; `per` says whether the decay counts
epochs (the classic cs231n solver) or mini-batch iterations. Must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlab.errors import DlabError

KINDS = ("constant", "step", "exponential")
PERS = ("epoch", "batch")


@dataclass(frozen=True)
class ScheduleConfig:
    kind: str = "constant"
    per: str = "epoch"  # count epochs or batches
    step_size: int = 1  # "step": decay every step_size epochs/batches
    gamma: float = 0.95  # decay factor (per step_size for "step", per unit for "exponential")

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise DlabError(f"unknown lr schedule {self.kind!r}; expected one of {list(KINDS)}")
        if self.per not in PERS:
            raise DlabError(f"lr schedule per={self.per!r}; expected 'epoch' or 'batch'")
        if self.step_size < 1:
            raise DlabError(f"lr schedule step_size {self.step_size}; expected >= 1")
        if not 0 < self.gamma <= 1:
            raise DlabError(f"lr schedule gamma {self.gamma}; expected a value in (0, 1]")


def lr_at(base_lr: float, cfg: ScheduleConfig, epoch: int, iteration: int) -> float:
    """The lr for the step taken in `epoch` (0-based) at global `iteration` (0-based)."""
    t = epoch if cfg.per == "epoch" else iteration
    if cfg.kind == "constant":
        return base_lr
    if cfg.kind == "step":
        return base_lr * cfg.gamma ** (t // cfg.step_size)
    return base_lr * cfg.gamma ** t
