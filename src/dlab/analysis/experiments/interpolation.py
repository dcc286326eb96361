"""Flatness by interpolation: θ(α) = (1−α)θ1 + αθ2 between two trained models.

Two pairs of MLPs (784-h-10) are trained on the same MNIST slice: batch `small_batch` vs
`large_batch` (same lr), and lr `lr_low` vs `lr_high` (same batch). The two models of a pair
start from different initializations. Along `alphas` points in [−1, 2] the interpolated
parameters of all α are stacked and evaluated in one vmap, without retraining. Verdict (for
each pair): the train loss has its minimum near α = 0 and near α = 1 (within ±0.3 on
[−0.5, 0.5] and [0.5, 1.5]) and a barrier between them (max over (0, 1) above both ends) or
beyond them (α = −1 and α = 2 above both ends).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlab.analysis.batched import AdamMath, evaluate_stacked
from dlab.analysis.datasets import image_split
from dlab.analysis.nets import mlp
from dlab.analysis.plots import panel, series
from dlab.analysis.registry import ContextSpec, ExperimentSpec
from dlab.analysis.sizes import ImageSizes, at_least, positive
from dlab.analysis.result import ExperimentResult, FigureSpec, VerdictResult
from dlab.analysis.training import train_classifiers

NEAR = 0.3  # how far (in α) from a model its loss minimum may lie and still count as "near"


@dataclass(frozen=True)
class InterpolationConfig(ImageSizes):
    epochs: int = positive(40)
    lr: float = positive(1e-3)  # the batch pair's lr
    hidden: int = positive(64)
    small_batch: int = positive(64)
    large_batch: int = positive(1024)
    lr_low: float = positive(1e-3)
    lr_high: float = positive(1e-2)
    lr_batch: int = positive(64)  # the lr pair's batch size
    alphas: int = at_least(31, 7)  # points on the line through both models, α in [-1, 2]
    same_init: bool = False  # both models of a pair start from the same weights


def interpolate(theta1: dict, theta2: dict, alphas: torch.Tensor) -> dict:
    """Stacked parameters (A, ...) of θ(α) = (1−α)θ1 + αθ2 for each α."""
    shape = lambda v: (-1,) + (1,) * v.dim()  # noqa: E731
    return {k: (1 - alphas.view(shape(v))) * v + alphas.view(shape(v)) * theta2[k]
            for k, v in theta1.items()}


def _train_one(cfg, train, test, seed, batch, lr, log):
    base, params, hist = train_classifiers(lambda: mlp((784, cfg.hidden, 10)), 1, seed, train,
                                           test, cfg.epochs, batch, AdamMath(lr=lr), log=log)
    return base, {k: v[0] for k, v in params.items()}


def check_curve(alphas: list[float], loss: list[float]) -> dict:
    """The verdict's measurements on one loss-vs-α curve."""
    a, l_ = torch.tensor(alphas), torch.tensor(loss)
    near = {}
    for centre in (0.0, 1.0):
        window = (a >= centre - 0.5 - 1e-9) & (a <= centre + 0.5 + 1e-9)
        near[centre] = float(a[window][l_[window].argmin()])
    ends = max(float(l_[(a - 0).abs().argmin()]), float(l_[(a - 1).abs().argmin()]))
    between = float(l_[(a > 0) & (a < 1)].max())
    beyond = min(float(l_[0]), float(l_[-1]))
    return {"argmin_near_0": near[0.0], "argmin_near_1": near[1.0], "loss_at_ends_max": ends,
            "max_between": between, "min_beyond": beyond,
            "ok": abs(near[0.0]) <= NEAR + 1e-6 and abs(near[1.0] - 1) <= NEAR + 1e-6
            and (between > ends or beyond > ends)}


def compute(cfg: InterpolationConfig, ctx: ContextSpec) -> ExperimentResult:
    train = image_split(cfg.dataset, "train", cfg.train_limit, ctx.data_dir)
    test = image_split(cfg.dataset, "test", cfg.test_limit, ctx.data_dir)
    alphas = torch.linspace(-1, 2, cfg.alphas)
    pairs = {"batch": ((cfg.small_batch, cfg.lr), (cfg.large_batch, cfg.lr)),
             "lr": ((cfg.lr_batch, cfg.lr_low), (cfg.lr_batch, cfg.lr_high))}
    numbers, checks, panels = {}, {}, []
    for name, ((b1, lr1), (b2, lr2)) in pairs.items():
        ctx.log(f"pair {name}: batch {b1} lr {lr1:g} vs batch {b2} lr {lr2:g}")
        base, t1 = _train_one(cfg, train, test, cfg.seed, b1, lr1, ctx.log)
        seed2 = cfg.seed if cfg.same_init else cfg.seed + 1
        _, t2 = _train_one(cfg, train, test, seed2, b2, lr2, ctx.log)
        stacked = interpolate(t1, t2, alphas)
        loss, acc = evaluate_stacked(base, stacked, train.x, train.y)
        test_loss, test_acc = evaluate_stacked(base, stacked, test.x, test.y)
        numbers[name] = {"alpha": alphas.tolist(), "loss": loss.tolist(), "acc": acc.tolist(),
                         "test_loss": test_loss.tolist(), "test_acc": test_acc.tolist(),
                         "model_1": {"batch_size": b1, "lr": lr1},
                         "model_2": {"batch_size": b2, "lr": lr2}}
        checks[name] = check_curve(alphas.tolist(), loss.tolist())
        label = f"θ1: batch {b1} lr {lr1:g} → θ2: batch {b2} lr {lr2:g}"
        panels.append(panel(f"{label}: loss", "α", "cross-entropy",
                            [series("train", alphas, loss), series("test", alphas, test_loss,
                                                                   "dashed")], logy=True))
        panels.append(panel("accuracy", "α", "accuracy",
                            [series("train", alphas, acc), series("test", alphas, test_acc,
                                                                  "dashed")]))
    verdict = VerdictResult(
        passed=all(c["ok"] for c in checks.values()),
        claim="for both pairs the loss has minima near α=0 and α=1 and a barrier between or beyond",
        measured=checks)
    fig = FigureSpec("interpolation", "panels", "Flatness: linear interpolation between two models",
                     {"panels": panels})
    return ExperimentResult(numbers, verdict, (fig,))


SPEC = ExperimentSpec(
    name="flatness-interpolation",
    order=8,
    title="Flatness: interpolating between two models",
    config_cls=InterpolationConfig,
    full={"train_limit": 0, "test_limit": 0, "epochs": 40, "alphas": 61},
    compute=compute,
    description="θ(α) = (1−α)θ1 + αθ2 for batch 64 vs 1024 and lr 1e-3 vs 1e-2, α in [−1, 2]",
)
