"""Random labels: an MLP memorizes MNIST whose training labels were randomly permuted.

The training labels are a seeded permutation of the real ones (the class balance stays, every
link between image and label is gone); the test labels stay true. Train loss falls as the net
memorizes while test loss rises and test accuracy stays at chance. Verdict: final training
accuracy > `min_train_acc`, final test accuracy within 2 points of 10%, and the test loss ends
above its minimum over training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlab.analysis.batched import AdamMath
from dlab.analysis.datasets import TensorSplit, image_split
from dlab.analysis.nets import mlp
from dlab.analysis.plots import panel, series
from dlab.analysis.registry import ContextSpec, ExperimentSpec
from dlab.analysis.sizes import ImageSizes, fraction, limit, positive, sizes
from dlab.analysis.result import ExperimentResult, FigureSpec, VerdictResult
from dlab.analysis.training import train_classifiers


@dataclass(frozen=True)
class RandomLabelsConfig(ImageSizes):
    train_limit: int = limit(1000)
    epochs: int = positive(60)
    hidden: tuple[int, ...] = sizes((512, 512), minimum=1)
    batch_size: int = positive(100)
    min_train_acc: float = fraction(0.9)  # the train accuracy that counts as memorized


def shuffled_labels(split: TensorSplit, seed: int) -> TensorSplit:
    """The same images with their labels randomly permuted."""
    perm = torch.randperm(len(split.y), generator=torch.Generator().manual_seed(seed))
    return TensorSplit(split.x, split.y[perm])


def compute(cfg: RandomLabelsConfig, ctx: ContextSpec) -> ExperimentResult:
    real = image_split(cfg.dataset, "train", cfg.train_limit, ctx.data_dir)
    train = shuffled_labels(real, cfg.seed)
    test = image_split(cfg.dataset, "test", cfg.test_limit, ctx.data_dir)
    agree = float((train.y == real.y).double().mean())
    _, _, hist = train_classifiers(lambda: mlp((784, *cfg.hidden, 10)), 1, cfg.seed, train, test,
                                   cfg.epochs, cfg.batch_size, AdamMath(lr=cfg.lr), log=ctx.log)
    curves = {k: hist.per_model(k, 0) for k in ("loss", "acc", "test_loss", "test_acc")}
    test_loss = curves["test_loss"]
    verdict = VerdictResult(
        passed=(curves["acc"][-1] > cfg.min_train_acc and abs(curves["test_acc"][-1] - 0.1) <= 0.02
                and test_loss[-1] > min(test_loss) and curves["loss"][-1] < curves["loss"][0]),
        claim=f"training accuracy on random labels exceeds {cfg.min_train_acc:g}, test accuracy "
              "stays within 2 points of 10%, train loss falls while test loss rises",
        measured={"final_train_acc": curves["acc"][-1], "final_test_acc": curves["test_acc"][-1],
                  "first_train_loss": curves["loss"][0], "final_train_loss": curves["loss"][-1],
                  "min_test_loss": min(test_loss), "final_test_loss": test_loss[-1],
                  "labels_unchanged_share": agree})
    epochs = list(range(1, cfg.epochs + 1))
    fig = FigureSpec("curves", "panels", "Random labels: memorization", {"panels": [
        panel("loss", "epoch", "cross-entropy", [series("train (random labels)", epochs,
                                                        curves["loss"]),
                                                 series("test (true labels)", epochs, test_loss)]),
        panel("accuracy", "epoch", "accuracy", [series("train (random labels)", epochs,
                                                       curves["acc"]),
                                                series("test (true labels)", epochs,
                                                       curves["test_acc"])])]})
    return ExperimentResult(curves, verdict, (fig,))


SPEC = ExperimentSpec(
    name="random-labels",
    order=6,
    title="Fitting random labels",
    config_cls=RandomLabelsConfig,
    full={"train_limit": 0, "test_limit": 0, "epochs": 1000},
    compute=compute,
    description="MNIST with permuted training labels: memorization without generalization",
)
