"""Exact Hessians of a loss w.r.t. all parameters, for stacked models, and the minimal ratio.

The parameters of one model are viewed as one flat vector θ (P,); `torch.func.hessian`
(forward-over-reverse) gives the exact (P, P) Hessian of L(θ), vmapped over the M stacked models
→ (M, P, P). Use float64 parameters: the experiments check symmetry to 1e-6. The minimal ratio
(Sagun et al.; the course's definition) is the share of positive eigenvalues. Imports torch.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, hessian, vmap

from dlab.analysis.batched import Params


def unflatten(theta: torch.Tensor, like: Params) -> Params:
    """Split a flat vector (P,) into tensors shaped like one model's parameters."""
    out, i = {}, 0
    for k, v in like.items():
        n = v.numel()
        out[k] = theta[i:i + n].reshape(v.shape)
        i += n
    return out


def grad_norm_objective(base: nn.Module, loss_fn: Callable) -> Callable:
    """||∇θ L(θ)||² of one model, as a function of (params, x, y): minimized to reach ∇L ≈ 0."""

    def loss(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return loss_fn(functional_call(base, params, (x,)), y)

    def objective(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        g = grad(loss)(params, x, y)
        return sum((v ** 2).sum() for v in g.values())

    return objective


def stacked_hessians(base: nn.Module, params: Params, x: torch.Tensor, y: torch.Tensor,
                     loss_fn: Callable) -> torch.Tensor:
    """The exact Hessian of the loss on (x, y) for each stacked model: (M, P, P)."""
    like = {k: v[0] for k, v in params.items()}

    def flat_loss(theta: torch.Tensor) -> torch.Tensor:
        return loss_fn(functional_call(base, unflatten(theta, like), (x,)), y)

    thetas = torch.cat([v.reshape(v.shape[0], -1) for v in params.values()], dim=1)
    return vmap(hessian(flat_loss))(thetas)


def minimal_ratio(hessians: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per model: (share of positive eigenvalues (M,), max |H - Hᵀ| (M,))."""
    asym = (hessians - hessians.transpose(1, 2)).abs().amax(dim=(1, 2))
    eig = torch.linalg.eigvalsh((hessians + hessians.transpose(1, 2)) / 2)
    return (eig > 0).double().mean(dim=1), asym
