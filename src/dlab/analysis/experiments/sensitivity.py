"""Flatness by sensitivity: the input-Jacobian norm of nets trained with different batch sizes.

For each batch size an MLP (784-h-10) is trained on the same MNIST slice with the same lr and
epochs. Sensitivity = ‖∂f(x)/∂x‖_F, the Frobenius norm of the Jacobian of the network output
(logits, 10) w.r.t. the input (784), averaged over `jacobian_samples` test images
(`torch.func.jacrev`, vmapped over samples). Verdict: sensitivity falls as the batch size grows
(Spearman rank correlation <= −0.8 and the largest batch below the smallest).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.func import functional_call, jacrev, vmap

from dlab.analysis.batched import AdamMath
from dlab.analysis.datasets import image_split
from dlab.analysis.nets import mlp
from dlab.analysis.plots import panel, series, train_test_panels
from dlab.analysis.registry import ContextSpec, ExperimentSpec
from dlab.analysis.sizes import ImageSizes, positive, require, sizes
from dlab.analysis.result import ExperimentResult, FigureSpec, VerdictResult
from dlab.analysis.stats import spearman
from dlab.analysis.training import train_classifiers


@dataclass(frozen=True)
class SensitivityConfig(ImageSizes):
    hidden: int = positive(64)
    batch_sizes: tuple[int, ...] = sizes((16, 64, 256, 1024, 4096), minimum=1)
    jacobian_samples: int = positive(500)

    def validate(self) -> None:
        require(len(self.batch_sizes) >= 2, f"sensitivity.batch_sizes = {list(self.batch_sizes)}; "
                "expected at least two batch sizes")


def input_jacobian_norm(base, params: dict, x: torch.Tensor) -> torch.Tensor:
    """‖∂f/∂x‖_F per sample (N,) for one model's params and inputs x (N, ...)."""

    def f(xi: torch.Tensor) -> torch.Tensor:
        return functional_call(base, params, (xi.unsqueeze(0),))[0]

    jac = vmap(jacrev(f))(x)  # (N, classes, *input_shape)
    return jac.reshape(len(x), -1).norm(dim=1)


def compute(cfg: SensitivityConfig, ctx: ContextSpec) -> ExperimentResult:
    train = image_split(cfg.dataset, "train", cfg.train_limit, ctx.data_dir)
    test = image_split(cfg.dataset, "test", cfg.test_limit, ctx.data_dir)
    rows = []
    for bs in cfg.batch_sizes:
        ctx.log(f"batch size {bs}")
        base, params, hist = train_classifiers(lambda: mlp((784, cfg.hidden, 10)), 1, cfg.seed,
                                               train, test, cfg.epochs, bs, AdamMath(lr=cfg.lr))
        one = {k: v[0] for k, v in params.items()}
        norms = input_jacobian_norm(base, one, test.x[:cfg.jacobian_samples])
        rows.append({"batch_size": bs, "sensitivity": float(norms.mean()),
                     **{k: hist.last(k)[0] for k in ("loss", "acc", "test_loss", "test_acc")}})
    sens = [r["sensitivity"] for r in rows]
    rho = spearman(list(cfg.batch_sizes), sens)
    verdict = VerdictResult(
        passed=rho <= -0.8 and sens[-1] < sens[0],
        claim="sensitivity (input-Jacobian Frobenius norm) falls as the batch size grows "
              "(Spearman <= -0.8)",
        measured={"spearman_batch_sensitivity": rho,
                  "sensitivity": {r["batch_size"]: r["sensitivity"] for r in rows}})
    bss = list(cfg.batch_sizes)
    panels = [panel("sensitivity", "batch size", "mean ‖∂f/∂x‖_F",
                    [series("sensitivity", bss, sens, "marker")], logx=True),
              *train_test_panels(bss, rows, "batch size", logx=True)]
    fig = FigureSpec("sensitivity", "panels", "Flatness: sensitivity vs batch size",
                     {"panels": panels})
    return ExperimentResult({"models": rows}, verdict, (fig,))


SPEC = ExperimentSpec(
    name="sensitivity",
    order=9,
    title="Flatness: sensitivity vs batch size",
    config_cls=SensitivityConfig,
    full={"train_limit": 0, "test_limit": 0, "epochs": 20, "jacobian_samples": 10000,
          "batch_sizes": [16, 32, 64, 128, 256, 512, 1024, 2048, 4096]},
    compute=compute,
    description="input-Jacobian Frobenius norm and train/test metrics of nets trained at "
                "several batch sizes",
)
