"""Task "numpy-mlp": the from-scratch numpy MLP on MNIST (the SJSU assignment's requirements a–i).

Config: `dlab.numpy_engine.mnist_mlp.MnistMLPConfig` (dataset, normalization, limits, [model]
MLPConfig, [solver] SolverConfig, [augment]). Primary metric: `val_acc`, maximised; as in the
assignment, the validation set is the MNIST test set (result.json's info says so). The task
runs itself (`dlab.numpy_engine.mnist_mlp.train_mnist_mlp`: numpy solver, npz checkpoints,
resume); seeds set `solver.seed`. Never imports torch.
"""

from __future__ import annotations

from typing import Any

from dlab.numpy_engine.mnist_mlp import TASK_NAME, MnistMLPConfig, resolve_mnist_mlp
from dlab.tasks.base import Column, RunContext, Task


def _run(cfg: MnistMLPConfig, ctx: RunContext) -> dict[str, Any]:
    from dlab.numpy_engine.mnist_mlp import train_mnist_mlp

    log = print if ctx.progress else (lambda message: None)
    return train_mnist_mlp(cfg, ctx.run_dir, ctx.data_dir, log)


def _describe(cfg: MnistMLPConfig) -> dict[str, Any]:
    return {"dataset": cfg.dataset, "model": "numpy-mlp " + "-".join(map(str, cfg.model.hidden)),
            "update_rule": cfg.solver.update_rule, "augmented": cfg.augment.enabled()}


TASK = Task(
    name=TASK_NAME,
    config_class=MnistMLPConfig,
    primary="val_acc",
    direction="max",
    resolve=resolve_mnist_mlp,
    open=None,
    run=_run,
    describe=_describe,
    report_columns=(Column("val_acc", "final test acc", "final", percent=True),
                    Column("val_acc", "best test acc", "best", percent=True),
                    Column("train_acc", "final train acc", "final", percent=True),
                    Column("val_loss", "final test loss", "final")),
    report_figures=(("val_acc", "test accuracy"), ("val_loss", "test loss"),
                    ("train_loss", "training loss")),
    seed_key="solver.seed",
    doc="the numpy MLP on MNIST (validation = the test set); best by val_acc",
)
