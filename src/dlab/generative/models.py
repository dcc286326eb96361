"""DCGAN-style generator and discriminator/critic for 28x28, 32x32 and 64x64 images; EMA of G.

No fully connected layers: G is a stack of transposed convs (4x4, stride 2) from a 1x1 noise
"image", D a stack of strided 4x4 convs down to one output per image. Sizes: G starts at 7x7
(28 = 7·2²) or 4x4 (32 = 4·2³, 64 = 4·2⁴) with `g_width · 2^(stages−1)` channels, halving per
stage (64x64 at width 64 is exactly pytorch/examples' DCGAN). D mirrors it: LeakyReLU(0.2),
batch norm on every conv but the first (optional: WGAN-GP's critic has none), and a last
conv with the whole remaining map as kernel. ACGAN: G gets a learned label embedding,
concatenated to the noise or multiplied into it (`embed_mode`); D has two heads (real/fake
logit and class logits), written as the channels of one last conv. Shapes NCHW; images in
[-1, 1] (tanh).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def _plan(size: int) -> tuple[int, int]:
    """(start size, number of 2x stages) for an image size."""
    start = 7 if size % 7 == 0 else 4
    stages = int(round(math.log2(size / start)))
    if start * 2 ** stages != size or stages < 1:
        raise ValueError(f"image size {size} is not 7·2^k or 4·2^k")
    return start, stages


class Generator(nn.Module):
    """z (B, noise_dim) [+ labels (B,)] → images (B, C, size, size) in [-1, 1]."""

    def __init__(self, noise_dim: int, width: int, channels: int, size: int,
                 num_classes: int = 0, embed_dim: int = 0, embed_mode: str = "concat"):
        super().__init__()
        start, stages = _plan(size)
        self.noise_dim, self.num_classes = noise_dim, num_classes
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes else None
        self.multiply = embed_mode == "multiply"
        z_dim = noise_dim + (embed_dim if num_classes and not self.multiply else 0)
        c = width * 2 ** (stages - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, c, start, 1, 0, bias=False),
                                   nn.BatchNorm2d(c), nn.ReLU(True)]
        for _ in range(stages - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2),
                       nn.ReLU(True)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            e = self.embed(labels)
            z = z * e if self.multiply else torch.cat([z, e], 1)
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """images (B, C, size, size) → (logit or critic value (B,), class logits (B, K) or None)."""

    def __init__(self, width: int, channels: int, size: int, batch_norm: bool,
                 num_classes: int = 0):
        super().__init__()
        start, stages = _plan(size)
        self.num_classes = num_classes
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1, bias=False),
                                   nn.LeakyReLU(0.2, True)]
        c = width
        for _ in range(stages - 1):
            layers.append(nn.Conv2d(c, 2 * c, 4, 2, 1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(2 * c))
            layers.append(nn.LeakyReLU(0.2, True))
            c *= 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(c, 1 + num_classes, start, 1, 0, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.head(self.features(x)).flatten(1)
        return out[:, 0], (out[:, 1:] if self.num_classes else None)


def init_weights(module: nn.Module) -> None:
    """DCGAN's initialisation: conv weights N(0, 0.02), batch-norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class EMA:
    """An exponential moving average of a module's parameters (buffers copied), for sampling."""

    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, source: nn.Module) -> None:
        for p_ema, p in zip(self.module.parameters(), source.parameters()):
            p_ema.lerp_(p, 1.0 - self.decay)
        for b_ema, b in zip(self.module.buffers(), source.buffers()):
            b_ema.copy_(b)
