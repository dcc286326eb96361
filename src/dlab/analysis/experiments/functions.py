"""Deep vs shallow nets of equal parameter count fitting two 1-D functions.

Three nets of ~571 parameters (1-5-10-10-10-10-10-5-1, 1-10-18-15-4-1, 1-190-1) fit
f1(x) = sin(5πx)/(5πx) and f2(x) = sign(sin(5πx)) on `points` evenly spaced points in [-1, 1]
with full-batch Adam on the MSE. Each net is trained `repeats` times from fresh initializations,
batched. Verdict: the deepest net reaches MSE < threshold on f1 in fewer epochs (median over the
repeats) than the shallow one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dlab.analysis.batched import AdamMath, BatchedTrainer, batched_forward, stack_params
from dlab.analysis.datasets import FUNCTIONS, function_points
from dlab.analysis.nets import count_params, init_copies, mlp
from dlab.analysis.plots import panel, series
from dlab.analysis.registry import ContextSpec, ExperimentSpec
from dlab.analysis.sizes import FunctionSizes, positive
from dlab.analysis.result import ExperimentResult, FigureSpec, VerdictResult

NETS = {"deep": (1, 5, 10, 10, 10, 10, 10, 5, 1), "medium": (1, 10, 18, 15, 4, 1),
        "shallow": (1, 190, 1)}


@dataclass(frozen=True)
class FunctionsConfig(FunctionSizes):
    epochs: int = positive(2000)  # full-batch steps
    repeats: int = positive(3)  # fresh initializations per net and function, trained batched
    threshold: float = positive(1e-3)  # the MSE the verdict times


def fit(sizes: tuple[int, ...], cfg: FunctionsConfig) -> dict[str, dict]:
    """Train `cfg.repeats` copies of one net on each function, all in one batch of models.

    Returns per function: loss curves (epochs, repeats), final MSEs, epochs to the threshold
    (None = never), and the best repeat's prediction.
    """
    xs, ys = zip(*(function_points(fn, cfg.points) for fn in FUNCTIONS))
    m = cfg.repeats * len(FUNCTIONS)
    # model j fits function j // repeats; inputs are shared, targets are per model
    x = xs[0].expand(m, -1, -1)
    y = torch.stack([ys[j // cfg.repeats] for j in range(m)])
    models = init_copies(lambda: mlp(sizes, cfg.activation), m, cfg.seed)
    base, params = stack_params(models)
    trainer = BatchedTrainer(base, params, AdamMath(lr=cfg.lr), F.mse_loss)
    losses = torch.empty(cfg.epochs, m)
    for epoch in range(cfg.epochs):
        losses[epoch] = trainer.step(x, y, per_model_batches=True).detach()
    with torch.no_grad():
        pred = batched_forward(base, trainer.params, x, per_model_inputs=True)
        final = ((pred - y) ** 2).mean(dim=(1, 2))
    out = {}
    for f, fn in enumerate(FUNCTIONS):
        cols = slice(f * cfg.repeats, (f + 1) * cfg.repeats)
        hit = losses[:, cols] < cfg.threshold
        first = [int(hit[:, r].nonzero()[0, 0]) + 1 if hit[:, r].any() else None
                 for r in range(cfg.repeats)]
        best = f * cfg.repeats + int(final[cols].argmin())
        out[fn] = {"params": count_params(models[0]), "loss": losses[:, cols].tolist(),
                   "final_mse": final[cols].tolist(), "epochs_to_threshold": first,
                   "median_epochs_to_threshold": _median(first), "x": xs[0][:, 0].tolist(),
                   "target": ys[f][:, 0].tolist(), "prediction": pred[best, :, 0].tolist()}
    return out


def _median(values: list[int | None]) -> float:
    """Median with None (never reached) counted as infinity."""
    ordered = sorted(math.inf if v is None else v for v in values)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def compute(cfg: FunctionsConfig, ctx: ContextSpec) -> ExperimentResult:
    fits = {}
    for name, sizes in NETS.items():
        ctx.log(f"fitting f1 and f2 with the {name} net {sizes}")
        for fn, result in fit(sizes, cfg).items():
            fits[f"{fn}/{name}"] = result
    deep = fits["f1/deep"]["median_epochs_to_threshold"]
    shallow = fits["f1/shallow"]["median_epochs_to_threshold"]
    verdict = VerdictResult(
        passed=deep < shallow,
        claim=f"the deep net reaches MSE < {cfg.threshold:g} on f1 in fewer epochs than the shallow one",
        measured={"deep_epochs": deep, "shallow_epochs": shallow,
                  "medium_epochs": fits["f1/medium"]["median_epochs_to_threshold"],
                  "final_mse": {k: min(v["final_mse"]) for k, v in fits.items()}})
    numbers = {k: {key: v[key] for key in ("params", "final_mse", "epochs_to_threshold",
                                            "median_epochs_to_threshold")}
               for k, v in fits.items()}
    return ExperimentResult(numbers, verdict, _figures(fits, cfg))


def _figures(fits: dict, cfg: FunctionsConfig) -> tuple[FigureSpec, ...]:
    loss_panels, pred_panels = [], []
    step = max(1, cfg.epochs // 400)  # thin the curves: the JSON stays small, the shape stays
    epochs = list(range(1, cfg.epochs + 1, step))
    for fn in ("f1", "f2"):
        curves = [series(f"{name} ({fits[f'{fn}/{name}']['params']} params)", epochs,
                         [min(row) for row in fits[f"{fn}/{name}"]["loss"][::step]])
                  for name in NETS]
        loss_panels.append(panel(f"{fn}: training MSE (best of {cfg.repeats} seeds)", "epoch",
                                 "MSE", curves, logy=True))
        x = fits[f"{fn}/deep"]["x"]
        preds = [series("ground truth", x, fits[f"{fn}/deep"]["target"], "dashed")]
        preds += [series(name, x, fits[f"{fn}/{name}"]["prediction"]) for name in NETS]
        pred_panels.append(panel(f"{fn}: predictions", "x", "f(x)", preds))
    return (FigureSpec("loss_curves", "panels", "Deep vs shallow: loss", {"panels": loss_panels}),
            FigureSpec("predictions", "panels", "Deep vs shallow: fits", {"panels": pred_panels}))


SPEC = ExperimentSpec(
    name="deep-vs-shallow-functions",
    order=1,
    title="Deep vs shallow nets on 1-D functions",
    config_cls=FunctionsConfig,
    full={"epochs": 20000, "repeats": 5},
    compute=compute,
    description="three ~571-parameter nets fit sin(5πx)/(5πx) and sign(sin(5πx))",
)
