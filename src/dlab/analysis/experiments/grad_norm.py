"""Gradient norm during training: the total L2 norm of all parameter gradients per iteration.

The deep 1-D function net (1-5-10-10-10-10-10-5-1) fits f1(x) = sin(5πx)/(5πx) with full-batch
Adam; every iteration records the loss and ||∇θ L||₂ over all parameters (no host sync inside the
loop). Verdict: the loss falls by at least 10× and the gradient norm over the last tenth of
training is below that over the first tenth (training approaches a stationary point).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dlab.analysis.batched import AdamMath, BatchedTrainer, stack_params
from dlab.analysis.datasets import function_points
from dlab.analysis.experiments.functions import NETS
from dlab.analysis.nets import init_copies, mlp
from dlab.analysis.plots import panel, series
from dlab.analysis.registry import ContextSpec, ExperimentSpec
from dlab.analysis.sizes import FunctionSizes, positive
from dlab.analysis.result import ExperimentResult, FigureSpec, VerdictResult


@dataclass(frozen=True)
class GradNormConfig(FunctionSizes):
    iterations: int = positive(1500)
    lr: float = positive(3e-3)


def compute(cfg: GradNormConfig, ctx: ContextSpec) -> ExperimentResult:
    x, y = function_points("f1", cfg.points)
    base, params = stack_params(init_copies(lambda: mlp(NETS["deep"], cfg.activation), 1, cfg.seed))
    trainer = BatchedTrainer(base, params, AdamMath(lr=cfg.lr), F.mse_loss)
    losses = torch.empty(cfg.iterations)
    norms = torch.empty(cfg.iterations)
    for it in range(cfg.iterations):
        loss, grads = trainer.step(x, y, return_grads=True)
        losses[it] = loss[0].detach()
        norms[it] = torch.sqrt(sum((g[0] ** 2).sum() for g in grads.values())).detach()
    tenth = max(1, cfg.iterations // 10)
    first_norm, last_norm = float(norms[:tenth].mean()), float(norms[-tenth:].mean())
    loss_drop = float(losses[0] / losses[-tenth:].mean())
    verdict = VerdictResult(
        passed=loss_drop >= 10 and last_norm < first_norm,
        claim="the loss falls at least 10x and the gradient norm in the last tenth of training "
              "is below that in the first tenth",
        measured={"initial_loss": float(losses[0]), "final_loss": float(losses[-1]),
                  "loss_drop_factor": loss_drop, "grad_norm_first_tenth": first_norm,
                  "grad_norm_last_tenth": last_norm})
    its = list(range(1, cfg.iterations + 1))
    fig = FigureSpec("grad_norm", "panels", "Gradient norm and loss per iteration", {"panels": [
        panel("loss (MSE on f1)", "iteration", "loss", [series("loss", its, losses)], logy=True),
        panel("gradient norm", "iteration", "||grad||_2", [series("grad norm", its, norms)],
              logy=True)]})
    numbers = {"loss": losses.tolist(), "grad_norm": norms.tolist()}
    return ExperimentResult(numbers, verdict, (fig,))


SPEC = ExperimentSpec(
    name="grad-norm",
    order=4,
    title="Gradient norm during training",
    config_cls=GradNormConfig,
    full={"iterations": 10000},
    compute=compute,
    description="||∇θ L||₂ over all parameters per iteration, beside the loss (deep net on f1)",
)
