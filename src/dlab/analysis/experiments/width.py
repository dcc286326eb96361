"""Parameters vs generalization: MLPs of growing hidden width on MNIST.

For each width w the MLP 784-w-w-10 is trained `repeats` times (seeds batched in one vmap),
with the same data, optimizer and epochs; train/test loss and accuracy (mean over repeats) are
plotted against the parameter count. Verdict: test accuracy rises with width (Spearman rank
correlation of parameter count and test accuracy >= 0.8, widest above narrowest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlab.analysis.batched import AdamMath
from dlab.analysis.datasets import image_split
from dlab.analysis.nets import count_params, mlp
from dlab.analysis.plots import train_test_panels
from dlab.analysis.registry import ContextSpec, ExperimentSpec
from dlab.analysis.sizes import ImageSizes, positive, require, sizes
from dlab.analysis.result import ExperimentResult, FigureSpec, VerdictResult
from dlab.analysis.stats import spearman
from dlab.analysis.training import train_classifiers


@dataclass(frozen=True)
class WidthConfig(ImageSizes):
    widths: tuple[int, ...] = sizes((2, 4, 6, 8, 12, 16, 24, 32, 64, 128), minimum=1)
    repeats: int = positive(2)
    batch_size: int = positive(100)

    def validate(self) -> None:
        require(len(self.widths) >= 2 and list(self.widths) == sorted(set(self.widths)),
                f"params-vs-generalization.widths = {list(self.widths)}; expected at least two "
                "distinct widths in increasing order")


def compute(cfg: WidthConfig, ctx: ContextSpec) -> ExperimentResult:
    train = image_split(cfg.dataset, "train", cfg.train_limit, ctx.data_dir)
    test = image_split(cfg.dataset, "test", cfg.test_limit, ctx.data_dir)
    rows = []
    for w in cfg.widths:
        ctx.log(f"width {w}: {cfg.repeats} repeats batched")
        build = lambda w=w: mlp((784, w, w, 10))  # noqa: E731 - bound per width
        _, _, hist = train_classifiers(build, cfg.repeats, cfg.seed, train, test, cfg.epochs,
                                       cfg.batch_size, AdamMath(lr=cfg.lr))
        rows.append({"width": w, "params": count_params(build()),
                     **{k: float(np.mean(hist.last(k))) for k in ("loss", "acc", "test_loss",
                                                                    "test_acc")}})
    params = [r["params"] for r in rows]
    rho = spearman(params, [r["test_acc"] for r in rows])
    verdict = VerdictResult(
        passed=rho >= 0.8 and rows[-1]["test_acc"] > rows[0]["test_acc"],
        claim="test accuracy rises with the parameter count (Spearman >= 0.8)",
        measured={"spearman_params_test_acc": rho, "narrowest_test_acc": rows[0]["test_acc"],
                  "widest_test_acc": rows[-1]["test_acc"], "models": len(rows)})
    panels = train_test_panels(params, rows, "parameters", logx=True)
    fig = FigureSpec("params_vs_generalization", "panels", "Parameters vs generalization",
                     {"panels": panels})
    return ExperimentResult({"models": rows}, verdict, (fig,))


SPEC = ExperimentSpec(
    name="params-vs-generalization",
    order=7,
    title="Parameters vs generalization",
    config_cls=WidthConfig,
    full={"train_limit": 0, "test_limit": 0, "epochs": 20, "repeats": 3,
          "widths": [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]},
    compute=compute,
    description="MLPs 784-w-w-10 of growing width: train/test loss and accuracy vs parameters",
)
