"""Batched training of many copies of one architecture in one process (torch.func + vmap).

M models that share an architecture (seeds, repetitions) are trained as one: their parameters
are stacked along a leading model axis (`torch.func.stack_module_state`) and the M forward
passes run as one: `vmap(functional_call(base, params_m, x_m))` in general, batched matrix
products for plain MLPs. Per-model gradients of the plain loss come from ordinary autograd on
the sum of the M losses (the models share no parameters); other objectives (the gradient norm)
use `vmap(grad_and_value(objective))`. The optimizer math (`SGDMath`, `AdamMath`) is the
same as `torch.optim.SGD` / `torch.optim.Adam` applied slice by slice, so a batched run equals M
sequential runs with the same initial weights and the same batches (tests pin this to 1e-5).

Shapes: stacked parameters (M, *param_shape); shared inputs (B, ...); per-model inputs
(M, B, ...); per-model losses (M,). Imports torch; must not import dlab.cli.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

Params = dict[str, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def stack_params(models: list[nn.Module]) -> tuple[nn.Module, Params]:
    """Stack the parameters of same-architecture `models`; returns (a stateless base, params).

    Only parameters are stacked: the nets of this package have no buffers (no batch norm), which
    keeps every model's update purely functional.
    """
    if any(next(m.buffers(), None) is not None for m in models):
        raise ValueError("batched training supports models without buffers only")
    params, _ = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    return base, {k: v.detach().clone() for k, v in params.items()}


def unstack_params(params: Params, index: int) -> Params:
    """Model `index`'s own parameters (views) from stacked ones."""
    return {k: v[index] for k, v in params.items()}


def flatten_params(params: Params, stacked: bool = True) -> torch.Tensor:
    """Concatenate parameters into one vector per model: (M, P) when stacked, else (P,)."""
    if stacked:
        return torch.cat([v.reshape(v.shape[0], -1) for v in params.values()], dim=1)
    return torch.cat([v.reshape(-1) for v in params.values()])


def batched_forward(base: nn.Module, params: Params, x: torch.Tensor,
                    per_model_inputs: bool = False) -> torch.Tensor:
    """Outputs of all M models: (M, B, out) for shared x (B, ...) or per-model x (M, B, ...).

    Plain MLPs (Flatten / Linear / elementwise activations) take a direct path of batched matrix
    products over the stacked weights, which is the same math with far fewer dispatched ops
    than vmap's per-call tracing; any other module goes through vmap(functional_call).
    """
    if _is_plain_mlp(base):
        return _mlp_forward(base, params, x, per_model_inputs)

    def f(p: Params, xb: torch.Tensor) -> torch.Tensor:
        return functional_call(base, p, (xb,))

    return vmap(f, in_dims=(0, 0 if per_model_inputs else None))(params, x)


_ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.LeakyReLU, nn.SiLU, nn.ELU, nn.Identity)


def _is_plain_mlp(base: nn.Module) -> bool:
    return isinstance(base, nn.Sequential) and all(
        isinstance(m, (nn.Flatten, nn.Linear) + _ELEMENTWISE) for m in base)


def _mlp_forward(base: nn.Sequential, params: Params, x: torch.Tensor,
                 per_model: bool) -> torch.Tensor:
    h = x
    for name, module in base.named_children():
        if isinstance(module, nn.Flatten):
            h = h.flatten(start_dim=2 if per_model else 1)
        elif isinstance(module, nn.Linear):
            w, b = params[f"{name}.weight"], params[f"{name}.bias"]
            # (B, in) @ (M, in, out) broadcasts to (M, B, out) for a shared first input
            h = torch.matmul(h, w.transpose(1, 2)) + b.unsqueeze(1)
            per_model = True
        else:
            h = module(h)
    return h if per_model else h.expand(next(iter(params.values())).shape[0], *h.shape)


def batched_losses(base: nn.Module, params: Params, x: torch.Tensor, y: torch.Tensor,
                   loss_fn: LossFn, per_model_inputs: bool = False) -> torch.Tensor:
    """The loss of every model on its batch: (M,)."""
    out = batched_forward(base, params, x, per_model_inputs)
    return vmap(loss_fn, in_dims=(0, 0 if per_model_inputs else None))(out, y)


@dataclass(frozen=True)
class SGDMath:
    """torch.optim.SGD's update (momentum, no dampening, no Nesterov) on stacked tensors."""

    lr: float
    momentum: float = 0.0

    def init(self, params: Params) -> dict:
        return {"step": 0, "buf": {k: torch.zeros_like(v) for k, v in params.items()}}

    def update(self, params: Params, grads: Params, state: dict) -> Params:
        first = state["step"] == 0
        state["step"] += 1
        out = {}
        for k, p in params.items():
            g = grads[k]
            if self.momentum:
                # torch.optim.SGD starts the momentum buffer at the first gradient itself
                buf = g.clone() if first else state["buf"][k].mul_(self.momentum).add_(g)
                state["buf"][k] = buf
                g = buf
            out[k] = p - self.lr * g
        return out


@dataclass(frozen=True)
class AdamMath:
    """torch.optim.Adam's update (no weight decay, no amsgrad) on stacked tensors."""

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def init(self, params: Params) -> dict:
        return {"step": 0, "m": {k: torch.zeros_like(v) for k, v in params.items()},
                "v": {k: torch.zeros_like(v) for k, v in params.items()}}

    def update(self, params: Params, grads: Params, state: dict) -> Params:
        b1, b2 = self.betas
        state["step"] += 1
        t = state["step"]
        # the same operation order as torch.optim.Adam's single-tensor path, to stay bit-close
        step_size = self.lr / (1 - b1 ** t)
        bc2_sqrt = math.sqrt(1 - b2 ** t)
        out = {}
        for k, p in params.items():
            g = grads[k]
            m = state["m"][k].lerp_(g, 1 - b1)
            v = state["v"][k].mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / bc2_sqrt).add_(self.eps)
            out[k] = p.addcdiv(m, denom, value=-step_size)
        return out


OptimMath = SGDMath | AdamMath


def torch_optimizer(math_: OptimMath, params) -> torch.optim.Optimizer:
    """The torch.optim twin of an optimizer math object (for sequential reference runs)."""
    if isinstance(math_, SGDMath):
        return torch.optim.SGD(params, lr=math_.lr, momentum=math_.momentum)
    return torch.optim.Adam(params, lr=math_.lr, betas=math_.betas, eps=math_.eps,
                            foreach=False)


class BatchedTrainer:
    """Train M stacked models with one vmapped loss/gradient and a functional optimizer.

    `objective(params, x, y)` may be any scalar function of one model's parameters (the plain
    loss, or the squared gradient norm in the minimal-ratio experiment).
    """

    def __init__(self, base: nn.Module, params: Params, optim: OptimMath, loss_fn: LossFn,
                 objective: Callable | None = None):
        self.base = base
        self.params = params
        self.optim = optim
        self.state = optim.init(params)
        self.loss_fn = loss_fn
        self._gv = None
        if objective is not None:
            self._set_objective(objective)

    def _set_objective(self, objective: Callable) -> None:
        self._gv = {dims: vmap(grad_and_value(objective), in_dims=(0, dims, dims))
                    for dims in (None, 0)}

    def _loss_grads(self, x: torch.Tensor, y: torch.Tensor, per_model: bool
                    ) -> tuple[Params, torch.Tensor]:
        """Per-model gradients of the plain loss with ordinary autograd: the models share no
        parameters, so the gradient of the summed losses w.r.t. model m's slice is model m's own
        gradient (cheaper than vmap(grad) for these small nets)."""
        leaves = {k: v.detach().requires_grad_() for k, v in self.params.items()}
        values = batched_losses(self.base, leaves, x, y, self.loss_fn, per_model)
        grads = torch.autograd.grad(values.sum(), list(leaves.values()))
        return dict(zip(leaves, grads)), values.detach()

    def switch_objective(self, objective: Callable, optim: OptimMath | None = None) -> None:
        """Train on a new objective from now on (optionally with a fresh optimizer state)."""
        self._set_objective(objective)
        if optim is not None:
            self.optim = optim
            self.state = optim.init(self.params)

    def step(self, x: torch.Tensor, y: torch.Tensor, per_model_batches: bool = False,
             return_grads: bool = False):
        """One optimizer step for every model; returns the objective per model (M,) before it.

        x, y: one shared batch (B, ...) or, with per_model_batches, one per model (M, B, ...).
        """
        if self._gv is None:
            grads, values = self._loss_grads(x, y, per_model_batches)
        else:
            grads, values = self._gv[0 if per_model_batches else None](self.params, x, y)
        self.params = self.optim.update(self.params, grads, self.state)
        return (values, grads) if return_grads else values

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 2000
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean loss (M,) and accuracy (M,) of every model on a classification set."""
        return evaluate_stacked(self.base, self.params, x, y, batch_size)


@torch.no_grad()
def evaluate_stacked(base: nn.Module, params: Params, x: torch.Tensor, y: torch.Tensor,
                     batch_size: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy (M,) and accuracy (M,) of stacked classifiers on (x, y)."""
    m = next(iter(params.values())).shape[0]
    loss_sum = torch.zeros(m, dtype=torch.float64)
    correct = torch.zeros(m, dtype=torch.float64)
    for i in range(0, len(y), batch_size):
        logits = batched_forward(base, params, x[i:i + batch_size])
        yb = y[i:i + batch_size]
        lp = torch.log_softmax(logits, dim=-1)
        loss_sum += -lp.gather(-1, yb.expand(m, -1).unsqueeze(-1)).squeeze(-1).sum(1).double()
        correct += (logits.argmax(-1) == yb).sum(1).double()
    return (loss_sum / len(y)).float(), (correct / len(y)).float()
