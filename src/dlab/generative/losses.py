"""The adversarial losses: non-saturating BCE (DCGAN, ACGAN + class cross-entropy), Wasserstein
(critic value difference) with weight clipping or the gradient penalty.

All return per-batch means; `d_step` / `g_step` in `dlab.generative.session` combine them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bce_d(real_logit: torch.Tensor, fake_logit: torch.Tensor) -> torch.Tensor:
    """−log D(x) − log(1 − D(G(z))), on logits (BCE-with-logits: the stable form of
    sigmoid + BCELoss)."""
    return (F.binary_cross_entropy_with_logits(real_logit, torch.ones_like(real_logit))
            + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit)))


def bce_g(fake_logit: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss −log D(G(z))."""
    return F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))


def wasserstein_d(real_value: torch.Tensor, fake_value: torch.Tensor) -> torch.Tensor:
    """Critic loss E[D(G(z))] − E[D(x)] (minus the Wasserstein estimate)."""
    return fake_value.mean() - real_value.mean()


def wasserstein_g(fake_value: torch.Tensor) -> torch.Tensor:
    return -fake_value.mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator) -> torch.Tensor:
    """E[(‖∇D(x̂)‖₂ − 1)²] at x̂ = εx + (1 − ε)G(z), ε ~ U[0, 1] per sample (Gulrajani et al.)."""
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=generator, device=real.device)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    value, _ = critic(mixed)
    (grad,) = torch.autograd.grad(value.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def class_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, labels)
