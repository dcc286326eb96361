"""Task "classification": an image classifier (the JHU net, CNNs, MLPs) with cross-entropy.

Config: `dlab.config.RunConfig` ([data] [model] [optim] [train]). Primary metric: the
validation accuracy `val_acc`, maximised. The session (`dlab.torch_engine.classify`) keeps both
splits on the device as uint8, augments there, and fuses conv → pool → ReLU on the CPU.
Per epoch: loss, acc (train), val_loss, val_acc; figures: curves, first-layer filters,
confusion matrix, most confident mistakes. Must not import torch at module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlab.config import RunConfig, resolve
from dlab.tasks.base import Column, OpenContext, Task


def _open(cfg: RunConfig, ctx: OpenContext):
    from dlab.torch_engine.classify import ClassifierSession

    return ClassifierSession(cfg, ctx)


def _section(run_dir: Path) -> str | None:
    """A run with the course's files (`train.deliverables` = PREFIX): the last line of PREFIX.log
    (the test accuracy), links to the files, and the first layer's filters, which the report's
    comparison figures do not show. None for other runs."""
    from dlab.runs import read_json

    try:
        prefix = read_json(run_dir / "config.json")["train"]["deliverables"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not prefix or not (run_dir / f"{prefix}.log").is_file():
        return None
    lines = (run_dir / f"{prefix}.log").read_text(errors="replace").strip().splitlines()
    present = [name for name in (f"{prefix}.log", "predictions.csv", f"{prefix}_lossvstrain.png",
                                 f"{prefix}_valaccuracy.png", f"{prefix}_gridfilt.png")
               if (run_dir / name).is_file()]
    text = (f"The course's files: {', '.join(f'[{n}]({n})' for n in present)}. The log's last "
            f"line: `{lines[-1] if lines else ''}`")
    grid = f"{prefix}_gridfilt.png"
    return text + (f"\n\n![{prefix}: first-layer filters]({grid})" if grid in present else "")


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
    report_section=_section,
    doc="image classification with cross-entropy; best checkpoint by validation accuracy",
)
