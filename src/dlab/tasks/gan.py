"""Task "gan": DCGAN, WGAN (weight clipping), WGAN-GP and ACGAN on MNIST, Fashion-MNIST, CIFAR-10.

Config: `dlab.generative.config.GanConfig` ([data] [model] [optim] [train] [eval]; `model.kind`
picks the per-kind defaults of every value left unset). Primary metric: `fd_dlab`, the Fréchet
distance of samples to the test set in the features of a dlab classifier of the dataset,
minimised (never called FID). Per epoch: d_loss, g_loss (+ wasserstein, gp for WGANs), FD-dlab,
KID-dlab, their real-vs-real floors, class coverage, and a fixed-noise grid in
`samples/epoch-XXX.png`. Must not import torch at module level.
"""

from __future__ import annotations

from typing import Any

from dlab.generative.config import GanConfig, resolve
from dlab.tasks.base import Column, OpenContext, Task


def _open(cfg: GanConfig, ctx: OpenContext):
    from dlab.generative.session import GanSession

    return GanSession(cfg, ctx)


def _describe(cfg: GanConfig) -> dict[str, Any]:
    return {"dataset": cfg.data.dataset, "model": cfg.model.kind, "kind": cfg.model.kind,
            "image_size": cfg.data.image_size or None, "ema_decay": cfg.train.ema_decay}


TASK = Task(
    name="gan",
    config_class=GanConfig,
    primary="fd_dlab",
    direction="min",
    resolve=resolve,
    open=_open,
    describe=_describe,
    report_columns=(Column("fd_dlab", "final FD-dlab", "final"),
                    Column("fd_dlab", "best FD-dlab", "best"),
                    Column("fd_dlab_floor", "FD-dlab floor", "final"),
                    Column("kid_dlab", "final KID-dlab", "final"),
                    Column("classes_covered", "classes ≥3%", "final")),
    report_figures=(("fd_dlab", "FD-dlab (samples vs test)"), ("d_loss", "D/critic loss"),
                    ("g_loss", "G loss")),
    doc="GANs (dcgan, wgan, wgan-gp, acgan); best checkpoint by FD-dlab",
)
