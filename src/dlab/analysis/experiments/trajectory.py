"""Optimization trajectories: one MLP trained from 8 fresh initializations, weights PCA'd to 2-D.

The 8 trainings run batched (one vmap). Every `collect_every` epochs each model's parameters
are collected, for the whole model and for its first layer; PCA (SVD of the centred points of
all runs together) projects them to 2-D; each point is labelled with that model's test accuracy
then. Verdict: every run learns (final test accuracy above `min_acc`) and the runs end at
distinct points (the smallest distance between final 2-D points is a sizeable fraction of the
spread of the cloud), i.e. different initializations find different minima of similar quality.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlab.analysis.batched import AdamMath, flatten_params
from dlab.analysis.datasets import image_split
from dlab.analysis.nets import mlp
from dlab.analysis.plots import panel, series
from dlab.analysis.registry import ContextSpec, ExperimentSpec
from dlab.analysis.sizes import ImageSizes, fraction, positive
from dlab.analysis.result import ExperimentResult, FigureSpec, VerdictResult
from dlab.analysis.training import train_classifiers


@dataclass(frozen=True)
class TrajectoryConfig(ImageSizes):
    epochs: int = positive(24)
    runs: int = positive(8)
    hidden: int = positive(32)
    collect_every: int = positive(3)  # epochs between collected weight vectors
    batch_size: int = positive(100)
    min_acc: float = fraction(0.8)  # the test accuracy every run must reach


def pca_2d(points: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """Project (N, D) points onto their top 2 principal axes; returns (N, 2), explained ratios."""
    centred = points.double() - points.double().mean(0)
    u, s, _ = torch.linalg.svd(centred, full_matrices=False)
    var = s ** 2
    return (u[:, :2] * s[:2]).float(), (var[:2] / var.sum()).tolist()


def compute(cfg: TrajectoryConfig, ctx: ContextSpec) -> ExperimentResult:
    train = image_split(cfg.dataset, "train", cfg.train_limit, ctx.data_dir)
    test = image_split(cfg.dataset, "test", cfg.test_limit, ctx.data_dir)
    whole, layer, epochs_seen = [], [], []

    def collect(epoch: int, params) -> None:
        if epoch % cfg.collect_every == 0 and epoch > 0:
            whole.append(flatten_params(params).clone())
            layer.append(params["1.weight"].reshape(cfg.runs, -1).clone())
            epochs_seen.append(epoch)

    _, _, hist = train_classifiers(lambda: mlp((784, cfg.hidden, 10)), cfg.runs, cfg.seed, train,
                                   test, cfg.epochs, cfg.batch_size, AdamMath(lr=cfg.lr),
                                   on_epoch=collect, log=ctx.log)
    acc = [[hist.test_acc[e - 1][r] for e in epochs_seen] for r in range(cfg.runs)]
    numbers = {"collected_epochs": epochs_seen, "test_acc": acc, "final_test_acc":
               hist.last("test_acc")}
    figures = []
    for key, stack, title in (("whole", whole, "whole model"), ("layer", layer, "first layer")):
        # points ordered run-major: run r's collections are rows r*T .. r*T+T-1
        pts = torch.stack(stack, dim=1).reshape(cfg.runs * len(stack), -1)
        xy, ratio = pca_2d(pts)
        xy = xy.reshape(cfg.runs, len(stack), 2)
        numbers[key] = {"xy": xy.tolist(), "explained_variance_ratio": ratio}
        curves = [series(f"run {r}", xy[r, :, 0], xy[r, :, 1], "marker",
                         text=[f"{a:.2f}" for a in acc[r]]) for r in range(cfg.runs)]
        figures.append(FigureSpec(f"trajectory_{key}", "panels", f"Optimization trajectories: {title}",
                                  {"panels": [panel(f"{title}: PCA of weights every "
                                                    f"{cfg.collect_every} epochs", "PC1", "PC2",
                                                    curves)]}))
    ends = torch.tensor(numbers["whole"]["xy"])[:, -1]
    min_end_dist = float(torch.pdist(ends).min())
    spread = float(torch.tensor(numbers["whole"]["xy"]).reshape(-1, 2).std(0).norm())
    final = hist.last("test_acc")
    verdict = VerdictResult(
        passed=min(final) > cfg.min_acc and min_end_dist > 0.1 * spread,
        claim=f"all {cfg.runs} runs learn (test acc > {cfg.min_acc}) and end at distinct points "
              "(closest final points > 10% of the cloud's spread)",
        measured={"min_final_test_acc": min(final), "max_final_test_acc": max(final),
                  "min_final_distance_2d": min_end_dist, "cloud_spread_2d": spread,
                  "explained_variance_whole": numbers["whole"]["explained_variance_ratio"]})
    return ExperimentResult(numbers, verdict, tuple(figures))


SPEC = ExperimentSpec(
    name="trajectory",
    order=3,
    title="Optimization trajectories (PCA of weights)",
    config_cls=TrajectoryConfig,
    full={"train_limit": 0, "test_limit": 0, "epochs": 45, "hidden": 64},
    compute=compute,
    description="an MLP trained 8 times (batched); weights every 3 epochs projected to 2-D",
)
