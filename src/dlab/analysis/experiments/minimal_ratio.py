"""Minimal ratio vs loss: many tiny nets driven to points where the gradient vanishes.

`nets` copies (default 100) of a tiny tanh net (1-5-5-1, 46 parameters) fit f1 on `points`
points, all batched in one vmap and in float64. Each first minimizes the MSE with Adam, then
switches its objective to ||∇θ L||² until that is near zero. Then the exact Hessian of the loss
w.r.t. all parameters gives the minimal ratio = share of positive eigenvalues. Verdict: every
ratio lies in (0, 1], every Hessian is symmetric to 1e-6, and the median final gradient norm is
below `grad_tol`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dlab.analysis.batched import AdamMath, BatchedTrainer, stack_params
from dlab.analysis.datasets import function_points
from dlab.analysis.hessian import grad_norm_objective, minimal_ratio, stacked_hessians
from dlab.analysis.nets import init_copies, mlp
from dlab.analysis.plots import panel, series
from dlab.analysis.registry import ContextSpec, ExperimentSpec
from dlab.analysis.sizes import at_least, positive, seed, sizes
from dlab.analysis.result import ExperimentResult, FigureSpec, VerdictResult


@dataclass(frozen=True)
class MinimalRatioConfig:
    nets: int = positive(100)
    hidden: tuple[int, ...] = sizes((5, 5), minimum=1)
    points: int = at_least(100, 2)
    loss_steps: int = positive(1500)
    grad_steps: int = positive(500)
    lr: float = positive(1e-2)
    grad_lr: float = positive(1e-3)
    grad_tol: float = positive(1e-3)
    seed: int = seed()


def train_to_critical_points(cfg: MinimalRatioConfig, log=lambda m: None):
    """Train the nets (loss, then gradient norm); returns (base, params, x, y, grad norms (M,))."""
    x, y = function_points("f1", cfg.points, torch.float64)
    sizes = (1, *cfg.hidden, 1)
    models = [m.double() for m in init_copies(lambda: mlp(sizes, "tanh"), cfg.nets, cfg.seed)]
    base, params = stack_params(models)
    trainer = BatchedTrainer(base, params, AdamMath(lr=cfg.lr), F.mse_loss)
    for step in range(cfg.loss_steps):
        loss = trainer.step(x, y)
    log(f"after {cfg.loss_steps} loss steps: median loss {float(loss.median()):.3g}")
    trainer.switch_objective(grad_norm_objective(base, F.mse_loss), AdamMath(lr=cfg.grad_lr))
    for step in range(cfg.grad_steps):
        sq_norm = trainer.step(x, y)
    log(f"after {cfg.grad_steps} grad-norm steps: median |grad| {float(sq_norm.median().sqrt()):.3g}")
    final_sq = torch.func.vmap(grad_norm_objective(base, F.mse_loss), in_dims=(0, None, None))(
        trainer.params, x, y)
    return base, trainer.params, x, y, final_sq.sqrt()


def compute(cfg: MinimalRatioConfig, ctx: ContextSpec) -> ExperimentResult:
    base, params, x, y, gnorm = train_to_critical_points(cfg, ctx.log)
    with torch.no_grad():
        out = torch.func.vmap(lambda p: torch.func.functional_call(base, p, (x,)))(params)
        losses = ((out - y) ** 2).mean(dim=(1, 2))
    hess = stacked_hessians(base, params, x, y, F.mse_loss)
    ratio, asym = minimal_ratio(hess)
    verdict = VerdictResult(
        passed=bool((ratio > 0).all() and (ratio <= 1).all() and asym.max() < 1e-6
                    and gnorm.median() < cfg.grad_tol),
        claim="minimal ratios lie in (0, 1], Hessians are symmetric to 1e-6 and the gradient "
              f"norm is driven below {cfg.grad_tol:g} (median)",
        measured={"min_ratio": float(ratio.min()), "max_ratio": float(ratio.max()),
                  "mean_ratio": float(ratio.mean()), "max_asymmetry": float(asym.max()),
                  "median_grad_norm": float(gnorm.median()), "max_grad_norm": float(gnorm.max()),
                  "params": int(hess.shape[1]), "nets": cfg.nets})
    numbers = {"loss": losses.tolist(), "minimal_ratio": ratio.tolist(),
               "grad_norm": gnorm.tolist(), "hessian_asymmetry": asym.tolist()}
    fig = FigureSpec("minimal_ratio", "panels", "Minimal ratio vs loss", {"panels": [
        panel(f"{cfg.nets} nets of {hess.shape[1]} parameters at ∇L≈0", "minimal ratio",
              "loss (MSE on f1)", [series("trained nets", ratio, losses, "scatter")], logy=True)]})
    return ExperimentResult(numbers, verdict, (fig,))


SPEC = ExperimentSpec(
    name="minimal-ratio",
    order=5,
    title="Minimal ratio of the Hessian vs loss",
    config_cls=MinimalRatioConfig,
    full={"points": 300, "loss_steps": 5000, "grad_steps": 3000},
    compute=compute,
    description="100 tiny nets trained to ∇L≈0; share of positive Hessian eigenvalues vs loss",
)
