"""Data for the analysis experiments as float tensors: image classification slices and 1-D functions.

Images come from `dlab.data.load_dataset` (uint8 NCHW) and are scaled to [0, 1] and normalized
with the MNIST mean/std (0.1307, 0.3081), the lab's default; the whole slice stays in memory.
The 1-D regression targets of the deep-vs-shallow experiment: f1(x) = sin(5πx)/(5πx) and
f2(x) = sign(sin(5πx)) on evenly spaced points in [-1, 1]. Imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from dlab.data import load_dataset

MEAN, STD = 0.1307, 0.3081


@dataclass(frozen=True)
class TensorSplit:
    """Normalized images (N, C, H, W) float32 and labels (N,) int64."""

    x: torch.Tensor
    y: torch.Tensor


def image_split(dataset: str, split: str, limit: int, data_dir=None) -> TensorSplit:
    """The first `limit` images (0 = all) of one split, normalized."""
    ds = load_dataset(dataset, split, data_dir)
    images, labels = ds.images, ds.labels
    if limit:
        images, labels = images[:limit], labels[:limit]
    x = (torch.from_numpy(np.array(images)).float() / 255.0 - MEAN) / STD
    return TensorSplit(x, torch.from_numpy(np.array(labels)).long())


def f1(x: torch.Tensor) -> torch.Tensor:
    """sin(5πx)/(5πx), with its limit 1 at x = 0."""
    z = 5 * math.pi * x
    return torch.where(z == 0, torch.ones_like(z), torch.sin(z) / torch.where(z == 0, 1.0, z))


def f2(x: torch.Tensor) -> torch.Tensor:
    """sign(sin(5πx))."""
    return torch.sign(torch.sin(5 * math.pi * x))


FUNCTIONS = {"f1": f1, "f2": f2}


def function_points(name: str, n: int, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of shape (n, 1) each: n evenly spaced points in [-1, 1] and the target there."""
    x = torch.linspace(-1, 1, n, dtype=dtype).unsqueeze(1)
    return x, FUNCTIONS[name](x)


def minibatch_order(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """One epoch's shuffled index batches (the last one may be smaller)."""
    perm = torch.randperm(n, generator=generator)
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]
