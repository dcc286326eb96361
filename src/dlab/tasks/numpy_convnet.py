"""Task "numpy-convnet": the from-scratch numpy conv → ReLU → pool → affine net on CIFAR-10.

Config: `dlab.numpy_engine.cifar_convnet.ConvNetRunConfig` (the course recipe: 49,000 / 1,000
split, SGD momentum, lr 1e-4 with a per-iteration decay, batch 50, 1 epoch; [model]
ConvNetConfig). Primary metric: `val_acc` on the 1,000-image hold-out, maximised; `train_acc`
is measured on 1,000 training images. The task runs itself; seeds set `seed`. Never imports
torch.
"""

from __future__ import annotations

from typing import Any

from dlab.numpy_engine.cifar_convnet import TASK_NAME, ConvNetRunConfig, resolve_convnet
from dlab.tasks.base import Column, RunContext, Task


def _run(cfg: ConvNetRunConfig, ctx: RunContext) -> dict[str, Any]:
    from dlab.numpy_engine.cifar_convnet import train_cifar_convnet

    log = print if ctx.progress else (lambda message: None)
    return train_cifar_convnet(cfg, ctx.run_dir, ctx.data_dir, log)


def _describe(cfg: ConvNetRunConfig) -> dict[str, Any]:
    return {"dataset": "cifar10", "model": f"numpy-convnet {cfg.model.filters}x"
            f"{cfg.model.kernel}", "train_size": cfg.train_size, "epochs": cfg.epochs}


TASK = Task(
    name=TASK_NAME,
    config_class=ConvNetRunConfig,
    primary="val_acc",
    direction="max",
    resolve=resolve_convnet,
    open=None,
    run=_run,
    describe=_describe,
    report_columns=(Column("val_acc", "final val acc", "final", percent=True),
                    Column("train_acc", "train acc (1000)", "final", percent=True),
                    Column("val_loss", "final val loss", "final")),
    report_figures=(("val_acc", "validation accuracy"), ("val_loss", "validation loss")),
    seed_key="seed",
    doc="the numpy convnet on CIFAR-10 (1,000-image hold-out); best by val_acc",
)
