"""Training-time augmentation of whole batches on the device, built from an augment config.

Input and output are float batches x (B, C, H, W) with values in [0, 1], on any device. Every
operation is vectorized over the batch (no per-sample Python loop), and all randomness comes
from the `torch.Generator` passed in, so the same generator state gives the same batch. Order:
random crop (zero or reflect padding, then a random window per image) → horizontal flip (at
random, or as the caller says: alternating flips follow the image, not the batch) → affine
(rotation, shift, zoom; bilinear, zero fill) → random erasing (one zeroed rectangle). This is
the only module of `dlab.data` that imports torch. The config is duck-typed: any object with the
fields of `dlab.config.AugmentConfig` (crop_padding, crop_fill, flip, rotate_deg, translate,
scale, erasing, erasing_area) will do, so this module does not import `dlab.config`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

# Random erasing (Zhong et al. 2017) draws the erased area from [0.02, max] of the image and
# the aspect ratio log-uniformly from [0.3, 1/0.3].
_ERASE_MIN_AREA = 0.02
_ERASE_LOG_RATIO = math.log(0.3)


class Augmenter:
    """Applies the augmentations an augment config enables; the identity when none is."""

    def __init__(self, cfg: Any):
        """Args: cfg: an `AugmentConfig` or any object with its fields."""
        self.cfg = cfg

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None,
                 flips: torch.Tensor | None = None) -> torch.Tensor:
        """Augment a batch.

        Args:
            x: float (B, C, H, W) in [0, 1].
            generator: on x's device; None uses torch's global generator.
            flips: (B,) bool, which images to flip when the config flips; None: at random.
        Returns:
            The augmented batch, same shape, dtype and device (x itself when nothing is enabled).
        """
        cfg = self.cfg
        if not (cfg.crop_padding or cfg.flip or cfg.rotate_deg or cfg.translate or cfg.scale
                or cfg.erasing):
            return x
        if cfg.crop_padding:
            x = random_crop(x, cfg.crop_padding, generator, cfg.crop_fill)
        if cfg.flip:
            x = random_flip(x, generator) if flips is None else flip_where(x, flips)
        if cfg.rotate_deg or cfg.translate or cfg.scale:
            x = random_affine(x, cfg.rotate_deg, cfg.translate, cfg.scale, generator)
        if cfg.erasing:
            x = random_erasing(x, cfg.erasing, cfg.erasing_area, generator)
        return x


def _uniform(n: int, low: float, high: float, like: torch.Tensor,
             generator: torch.Generator | None) -> torch.Tensor:
    u = torch.rand(n, generator=generator, device=like.device, dtype=torch.float32)
    return (low + (high - low) * u).to(like.dtype)


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator | None = None,
                fill: str = "zero") -> torch.Tensor:
    """Pad by `padding` (`fill`: "zero" or "reflect") and cut a random H x W window per image
    (content shifts <= padding)."""
    b, c, h, w = x.shape
    wp = w + 2 * padding
    mode = "reflect" if fill == "reflect" else "constant"
    padded = F.pad(x, (padding, padding, padding, padding), mode=mode).reshape(b, c, -1)
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=x.device)
    # One gather over the flattened padded image: 5x faster on CPU than 4-D advanced indexing.
    window = (torch.arange(h, device=x.device)[:, None] * wp
              + torch.arange(w, device=x.device)).view(1, -1)  # (1, H*W)
    index = (dy * wp + dx)[:, None] + window  # (B, H*W)
    return padded.gather(2, index[:, None, :].expand(b, c, h * w)).view(b, c, h, w)


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each image left-right with probability 0.5."""
    return flip_where(x, torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5)


def flip_where(x: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Flip left-right the images where `flips` (B,) is true."""
    return torch.where(flips[:, None, None, None], x.flip(3), x)


def random_affine(x: torch.Tensor, rotate_deg: float, translate: float, scale: float,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Rotate by U(-r, r) degrees, shift by U(-t, t) of the image size, zoom by U(1-s, 1+s)."""
    b = x.shape[0]
    angle = _uniform(b, -rotate_deg, rotate_deg, x, generator) * (math.pi / 180)
    zoom = _uniform(b, 1 - scale, 1 + scale, x, generator).clamp_min(1e-3)
    # affine_grid's coordinates span [-1, 1], so a shift of t image sizes is 2t there.
    shift = _uniform(2 * b, -translate, translate, x, generator).view(b, 2) * 2
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # theta maps output coordinates to input ones: the inverse of rotate-zoom-then-shift.
    theta = torch.stack([
        torch.stack([cos, sin, -(cos * shift[:, 0] + sin * shift[:, 1])], 1),
        torch.stack([-sin, cos, -(-sin * shift[:, 0] + cos * shift[:, 1])], 1),
    ], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_erasing(x: torch.Tensor, p: float, max_area: float,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """With probability p per image, zero one rectangle of at most `max_area` of the image."""
    b, _, h, w = x.shape
    apply = torch.rand(b, generator=generator, device=x.device) < p
    low = min(_ERASE_MIN_AREA, max_area)
    area = _uniform(b, low, max_area, x, generator).float() * (h * w)
    ratio = torch.exp(_uniform(b, _ERASE_LOG_RATIO, -_ERASE_LOG_RATIO, x, generator).float())
    # Rounding down keeps eh * ew <= area, so the bound holds exactly.
    eh = torch.sqrt(area * ratio).floor().clamp(1, h)
    ew = (area / eh).floor().clamp(1, w)
    apply &= eh * ew <= area  # areas under one pixel (erasing_area ~ 0) erase nothing
    top = (torch.rand(b, generator=generator, device=x.device) * (h - eh + 1)).floor()
    left = (torch.rand(b, generator=generator, device=x.device) * (w - ew + 1)).floor()
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = ((ys >= top[:, None, None]) & (ys < (top + eh)[:, None, None])
              & (xs >= left[:, None, None]) & (xs < (left + ew)[:, None, None]))
    mask = (inside & apply[:, None, None])[:, None]  # (B, 1, H, W)
    return x.masked_fill(mask, 0.0)
