"""Training-set augmentation for small gray images in numpy: shift, rotation, zoom, elastic.

Works on whole batches x (N, 1, H, W) of floats in [0, 1] (background 0): one random affine
map per image (rotation, zoom, shift) plus an optional elastic displacement field (Simard et al.
2003: uniform noise smoothed by a Gaussian of width `elastic_sigma`, scaled by `elastic_alpha`),
then bilinear resampling with zero fill. Everything is vectorized over the batch: the Gaussian
smoothing is two small matrix products (G F G^T), the resampling one gather of four neighbours.
Only training batches are augmented. Must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlab.errors import DlabError


@dataclass(frozen=True)
class AugmentConfig:
    shift_px: float = 0.0  # shift drawn from [-s, s] pixels on each axis
    rotate_deg: float = 0.0  # rotation drawn from [-r, r] degrees
    zoom: float = 0.0  # scale drawn from [1 - z, 1 + z]
    elastic_alpha: float = 0.0  # displacement scale in pixels (0 = no elastic distortion)
    elastic_sigma: float = 5.0  # smoothing width of the displacement field in pixels
    prob: float = 1.0  # share of training images that are augmented at all

    def enabled(self) -> bool:
        return bool(self.shift_px or self.rotate_deg or self.zoom or self.elastic_alpha)

    def validate(self) -> None:
        if min(self.shift_px, self.rotate_deg, self.zoom, self.elastic_alpha) < 0:
            raise DlabError(f"augmentation {self}; expected non-negative amounts")
        if not 0 < self.elastic_sigma or not 0 <= self.prob <= 1 or self.zoom >= 1:
            raise DlabError(f"augmentation sigma {self.elastic_sigma}, prob {self.prob}, zoom "
                            f"{self.zoom}; expected sigma > 0, prob in [0, 1], zoom < 1")


def gaussian_matrix(size: int, sigma: float, dtype=np.float32) -> np.ndarray:
    """(size, size) matrix G with G @ f = f convolved with a Gaussian (zero padding)."""
    d = np.arange(size)[:, None] - np.arange(size)[None, :]
    radius = int(4 * sigma)
    full = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).sum()
    return (np.exp(-0.5 * (d / sigma) ** 2) / full).astype(dtype)


def bilinear_sample(images: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Sample images (N, H, W) at float coordinates ys, xs (N, H, W); zero outside."""
    n, h, w = images.shape
    padded = np.zeros((n, h + 3, w + 3), dtype=images.dtype)
    padded[:, 1:h + 1, 1:w + 1] = images
    ys = np.clip(ys, -1, h) + 1
    xs = np.clip(xs, -1, w) + 1
    y0 = np.floor(ys).astype(np.int64)
    x0 = np.floor(xs).astype(np.int64)
    wy = (ys - y0).astype(images.dtype)
    wx = (xs - x0).astype(images.dtype)
    flat = padded.reshape(n, -1)
    base = (np.arange(n) * (h + 3) * (w + 3))[:, None, None]
    row = w + 3

    def at(yy, xx):
        return flat.ravel()[base + yy * row + xx]

    top = at(y0, x0) * (1 - wx) + at(y0, x0 + 1) * wx
    bottom = at(y0 + 1, x0) * (1 - wx) + at(y0 + 1, x0 + 1) * wx
    return top * (1 - wy) + bottom * wy


def augment_batch(x: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Randomly warp a batch x (N, 1, H, W) in [0, 1]; returns a new array of the same shape."""
    n, c, h, w = x.shape
    if c != 1:
        raise DlabError(f"augment_batch got {c} channels; expected gray images (N, 1, H, W)")
    dt = x.dtype
    cy, cx = (h - 1) / 2, (w - 1) / 2
    gy, gx = np.meshgrid(np.arange(h, dtype=dt) - cy, np.arange(w, dtype=dt) - cx,
                         indexing="ij")
    theta = np.deg2rad(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg, n)).astype(dt)
    scale = rng.uniform(1 - cfg.zoom, 1 + cfg.zoom, n).astype(dt)
    shift = rng.uniform(-cfg.shift_px, cfg.shift_px, (n, 2)).astype(dt)
    cos, sin = (np.cos(theta) / scale)[:, None, None], (np.sin(theta) / scale)[:, None, None]
    ys = cos * gy + sin * gx + cy - shift[:, 0, None, None]
    xs = -sin * gy + cos * gx + cx - shift[:, 1, None, None]
    if cfg.elastic_alpha:
        gh, gw = gaussian_matrix(h, cfg.elastic_sigma, dt), gaussian_matrix(w, cfg.elastic_sigma, dt)
        noise = rng.uniform(-1, 1, (2, n, h, w)).astype(dt)
        field = cfg.elastic_alpha * (gh @ noise @ gw.T)
        ys = ys + field[0]
        xs = xs + field[1]
    out = bilinear_sample(x[:, 0], ys, xs)[:, None]
    if cfg.prob < 1:
        keep = rng.random(n) >= cfg.prob
        out[keep] = x[keep]
    return out
