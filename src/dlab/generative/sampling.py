"""Drawing samples from a generator, tiling them into a grid PNG, and the run's curves figure.

Samples are always drawn with G in eval mode (batch norm on its running statistics) and come
back as float tensors in [-1, 1]; only the grid PNG quantizes to uint8 — metrics never read
PNGs. Shapes NCHW.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch


@torch.no_grad()
def sample(generator_net: torch.nn.Module, n: int, noise_dim: int, device: torch.device,
           rng: torch.Generator, num_classes: int = 0, batch_size: int = 500) -> torch.Tensor:
    """n images (n, C, H, W) in [-1, 1] from fresh noise of `rng`; ACGAN: labels i % K.

    G is put in eval mode for the draw and left in the mode it had."""
    was_training = generator_net.training
    generator_net.eval()
    out = []
    try:
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            z = torch.randn(b, noise_dim, generator=rng, device=device)
            labels = (torch.arange(start, start + b, device=device) % num_classes
                      if num_classes else None)
            out.append(generator_net(z, labels).float().clamp_(-1, 1))
    finally:
        generator_net.train(was_training)
    return torch.cat(out)


def intended_labels(n: int, num_classes: int) -> np.ndarray:
    """The labels `sample` conditions an ACGAN on: 0, 1, …, K−1, 0, 1, …"""
    return np.arange(n) % num_classes


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] float (N, C, H, W) → uint8 numpy."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


def grid_image(images_uint8: np.ndarray, ncols: int = 8, pad: int = 2) -> np.ndarray:
    """Tile uint8 (N, C, H, W) into one (H', W', C) image with `pad` black pixels between."""
    n, c, h, w = images_uint8.shape
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    grid = np.zeros((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), dtype=np.uint8)
    for i, img in enumerate(images_uint8):
        r, col = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y:y + h, x:x + w] = img.transpose(1, 2, 0)
    return grid


def save_grid(images: torch.Tensor, path: Path, ncols: int = 8) -> np.ndarray:
    """Write images in [-1, 1] as a grid PNG; returns the grid (H', W', C) uint8."""
    from PIL import Image

    grid = grid_image(to_uint8(images), ncols)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid).save(tmp, format="PNG")
    tmp.replace(path)
    return grid


def plot_gan_curves(rows: Sequence[dict[str, Any]], path: Path, title: str = "") -> Path:
    """D/G losses and FD-dlab per epoch (PNG, with its data as `<name>.json` beside it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ("d_loss", "g_loss", "wasserstein", "gp") if any(k in r for r in rows)]
    data = {"epoch": [r["epoch"] for r in rows],
            **{k: [r.get(k) for r in rows] for k in keys + ["fd_dlab", "fd_dlab_floor"]}}
    path.with_suffix(".json").write_text(json.dumps(data))
    fig, (ax_l, ax_f) = plt.subplots(1, 2, figsize=(10, 4))
    for k in keys:
        ax_l.plot(data["epoch"], data[k], marker="o", label=k)
    ax_f.plot(data["epoch"], data["fd_dlab"], marker="o", label="FD-dlab (samples vs test)")
    ax_f.plot(data["epoch"], data["fd_dlab_floor"], ls="--", label="floor (train vs test)")
    ax_l.set(xlabel="epoch", title="losses (per-sample means)")
    ax_f.set(xlabel="epoch", title="FD-dlab (lower is better)")
    for ax in (ax_l, ax_f):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
