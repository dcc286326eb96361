"""Task "gan": DCGAN, WGAN (weight clipping), WGAN-GP and ACGAN on MNIST, Fashion-MNIST, CIFAR-10.

Config: `dlab.generative.config.GanConfig` ([data] [model] [optim] [train] [eval]; `model.kind`
picks the per-kind defaults of every value left unset). Primary metric: `fd_dlab`, the Fréchet
distance of samples to the test set in the features of a dlab classifier of the dataset,
minimised (never called FID). Per epoch: d_loss, g_loss (+ wasserstein, gp for WGANs), FD-dlab,
KID-dlab, their real-vs-real floors, class coverage, and a fixed-noise grid in
`samples/epoch-XXX.png`. Must not import torch at module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlab.generative.config import GanConfig, resolve
from dlab.tasks.base import Column, OpenContext, Task


def _open(cfg: GanConfig, ctx: OpenContext):
    from dlab.generative.session import GanSession

    return GanSession(cfg, ctx)


def _describe(cfg: GanConfig) -> dict[str, Any]:
    return {"dataset": cfg.data.dataset, "model": cfg.model.kind, "kind": cfg.model.kind,
            "image_size": cfg.data.image_size or None, "ema_decay": cfg.train.ema_decay}


def _fmt(v: Any, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _section(run_dir: Path) -> str | None:
    """The final scores with their real-vs-real floors, coverage, ACGAN label accuracy and the
    last fixed-noise grid (links relative to `run_dir` as given)."""
    from dlab.results import read_result

    result = read_result(run_dir)
    if result is None or result.get("status") not in ("finished", "pruned"):
        return None
    f, info = result["final"], result.get("info") or {}
    fd, floor = f.get("fd_dlab"), f.get("fd_dlab_floor")
    ratio = f"{fd / floor:.1f}×" if fd is not None and floor else "–"
    acc = f.get("label_acc")
    rows = ["| N | FD-dlab | floor | FD / floor | KID-dlab | floor | classes ≥3% | KL to uniform "
            "| intended-label acc |", "|---|---|---|---|---|---|---|---|---|",
            f"| {f.get('eval_n', '–')} | {_fmt(fd)} | {_fmt(floor)} | {ratio} | "
            f"{_fmt(f.get('kid_dlab'))} ± {_fmt(f.get('kid_dlab_std'))} | "
            f"{_fmt(f.get('kid_dlab_floor'))} | {f.get('classes_covered', '–')} | "
            f"{_fmt(f.get('kl_uniform'), 3)} | {'–' if acc is None else f'{100 * acc:.1f}%'} |"]
    note = ("FD-dlab / KID-dlab: samples vs the test set in the features of dlab classifier "
            f"{info.get('extractor_key', '?')} (test accuracy "
            f"{_fmt(info.get('extractor_test_acc'), 3)}), not FID; each floor is real training "
            "images vs the test set at the same N.")
    grids = sorted((Path(run_dir) / "samples").glob("epoch-*.png"))
    link = f"\n\n![final samples]({grids[-1].as_posix()})" if grids else ""
    return "\n".join(rows) + "\n\n" + note + link


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
                    Column("kid_dlab_floor", "KID-dlab floor", "final"),
                    Column("classes_covered", "classes ≥3%", "final"),
                    Column("label_acc", "intended-label acc (ACGAN)", "final", percent=True)),
    report_figures=(("fd_dlab", "FD-dlab (samples vs test)"), ("d_loss", "D/critic loss"),
                    ("g_loss", "G loss")),
    report_section=_section,
    doc="GANs (dcgan, wgan, wgan-gp, acgan); best checkpoint by FD-dlab",
)
