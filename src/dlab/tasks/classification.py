"""Task "classification": an image classifier (the JHU net, CNNs, MLPs) with cross-entropy.

Config: `dlab.config.RunConfig` ([data] [model] [optim] [train]). Primary metric: the
validation accuracy `val_acc`, maximised. The session (`dlab.torch_engine.classify`) keeps both
splits on the device as uint8, augments there, and fuses conv → pool → ReLU on the CPU.
Per epoch: loss, acc (train), val_loss, val_acc; figures: curves, first-layer filters,
confusion matrix, most confident mistakes. Must not import torch at module level.
"""

from __future__ import annotations

from typing import Any

from dlab.config import RunConfig, resolve
from dlab.tasks.base import Column, OpenContext, Task


def _open(cfg: RunConfig, ctx: OpenContext):
    from dlab.torch_engine.classify import ClassifierSession

    return ClassifierSession(cfg, ctx)


def _describe(cfg: RunConfig) -> dict[str, Any]:
    return {"dataset": cfg.data.dataset, "model": cfg.model.name, "tta": cfg.train.tta}


TASK = Task(
    name="classification",
    config_class=RunConfig,
    primary="val_acc",
    direction="max",
    resolve=resolve,
    open=_open,
    describe=_describe,
    report_columns=(Column("val_acc", "final val acc", "final", percent=True),
                    Column("val_acc", "best val acc", "best", percent=True),
                    Column("val_loss", "final val loss", "final")),
    report_figures=(("val_acc", "validation accuracy"), ("val_loss", "validation loss"),
                    ("loss", "training loss")),
    doc="image classification with cross-entropy; best checkpoint by validation accuracy",
)
