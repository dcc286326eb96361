"""Deep vs shallow CNNs of equal parameter count (~25.6k) on MNIST.

Three VGG-style CNNs (torch engine `CNNConfig`, no batch norm, flatten head) of 1, 2 and 4 conv
layers whose parameter counts lie within 2% of 25.6k (stages (13,); (16, 40); (16, 26) with two
convs per stage) are trained with the same optimizer,
batches and epochs; train/test loss and accuracy per epoch. Verdict: the parameter counts agree
within 5% and the deepest net ends with a test accuracy at least the shallowest one's.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlab.analysis.batched import AdamMath
from dlab.analysis.datasets import image_split
from dlab.analysis.nets import cnn, count_params
from dlab.analysis.plots import panel, series
from dlab.analysis.registry import ContextSpec, ExperimentSpec
from dlab.analysis.sizes import ImageSizes, limit, positive
from dlab.analysis.result import ExperimentResult, FigureSpec, VerdictResult
from dlab.analysis.training import train_classifiers

NETS = {"1 conv": ((13,), 1), "2 convs": ((16, 40), 1), "4 convs": ((16, 26), 2)}
TARGET_PARAMS = 25_600


@dataclass(frozen=True)
class MnistDepthConfig(ImageSizes):
    train_limit: int = limit(6000)
    epochs: int = positive(4)
    batch_size: int = positive(64)


def compute(cfg: MnistDepthConfig, ctx: ContextSpec) -> ExperimentResult:
    train = image_split(cfg.dataset, "train", cfg.train_limit, ctx.data_dir)
    test = image_split(cfg.dataset, "test", cfg.test_limit, ctx.data_dir)
    runs = {}
    for name, (channels, per_stage) in NETS.items():
        ctx.log(f"training the {name} CNN {channels} x {per_stage}")
        build = lambda: cnn(channels, per_stage)  # noqa: E731 - used at once
        _, _, hist = train_classifiers(build, 1, cfg.seed, train, test, cfg.epochs,
                                       cfg.batch_size, AdamMath(lr=cfg.lr), log=ctx.log)
        runs[name] = {"channels": list(channels), "convs_per_stage": per_stage,
                      "params": count_params(build()),
                      **{k: hist.per_model(k, 0) for k in ("loss", "acc", "test_loss", "test_acc")}}
    params = [r["params"] for r in runs.values()]
    spread = (max(params) - min(params)) / TARGET_PARAMS
    shallow, deep = runs["1 conv"]["test_acc"][-1], runs["4 convs"]["test_acc"][-1]
    verdict = VerdictResult(
        passed=spread < 0.05 and deep >= shallow,
        claim="at equal parameter count (within 5% of 25.6k) the 4-conv net ends at a test "
              "accuracy at least the 1-conv net's",
        measured={"params": {n: r["params"] for n, r in runs.items()},
                  "final_test_acc": {n: r["test_acc"][-1] for n, r in runs.items()}})
    return ExperimentResult(runs, verdict, (_figure(runs, cfg),))


def _figure(runs: dict, cfg: MnistDepthConfig) -> FigureSpec:
    epochs = list(range(1, cfg.epochs + 1))
    panels = []
    for key, label in (("loss", "loss"), ("acc", "accuracy")):
        curves = []
        for name, r in runs.items():
            curves.append(series(f"{name} train ({r['params']})", epochs, r[key], "marker"))
            curves.append(series(f"{name} test", epochs, r[f"test_{key}"], "dashed"))
        panels.append(panel(f"{cfg.dataset}: {label}", "epoch", label, curves))
    return FigureSpec("curves", "panels", "Deep vs shallow CNNs (~25.6k parameters)",
                      {"panels": panels})


SPEC = ExperimentSpec(
    name="deep-vs-shallow-mnist",
    order=2,
    title="Deep vs shallow CNNs on MNIST",
    config_cls=MnistDepthConfig,
    full={"train_limit": 0, "test_limit": 0, "epochs": 20},
    compute=compute,
    description="three ~25.6k-parameter CNNs with 1, 2 and 4 conv layers on MNIST",
)
