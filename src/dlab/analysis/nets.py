"""The small networks of the analysis experiments, built from tuples of sizes.

These are plain `torch.nn.Sequential` stacks without buffers (no batch norm), so that many copies
can be stacked and trained with `dlab.analysis.batched`. MLPs take any input shape and flatten
it; `cnn` builds a plain conv stack for 28x28 single-channel images. Imports torch.
"""

from __future__ import annotations

import torch
from torch import nn

from dlab.errors import DlabError

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
               "leaky_relu": nn.LeakyReLU, "silu": nn.SiLU, "elu": nn.ELU}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise DlabError(f"unknown activation {name!r}; expected one of: " + ", ".join(ACTIVATIONS))
    return ACTIVATIONS[name]()


def mlp(sizes: tuple[int, ...], act: str = "relu") -> nn.Sequential:
    """A fully connected net with layer widths `sizes` (input first, output last)."""
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(activation(act))
    return nn.Sequential(*layers)


def cnn(channels: tuple[int, ...], fc: int, num_classes: int = 10, image: int = 28,
        in_channels: int = 1) -> nn.Sequential:
    """3x3 'same' convs with ReLU, a 2x2 max pool after each of the first two, then fc layers.

    Args:
        channels: output channels of each conv layer (depth = len(channels)).
        fc: width of the hidden fully connected layer (0 = straight to the classes).
    """
    layers: list[nn.Module] = []
    c, size = in_channels, image
    for i, out in enumerate(channels):
        layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU()]
        if i < 2:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        c = out
    layers.append(nn.Flatten())
    flat = c * size * size
    if fc:
        layers += [nn.Linear(flat, fc), nn.ReLU(), nn.Linear(fc, num_classes)]
    else:
        layers.append(nn.Linear(flat, num_classes))
    return nn.Sequential(*layers)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def init_copies(build, count: int, seed: int) -> list[nn.Module]:
    """`count` freshly initialized copies of `build()`, copy i seeded with seed + i."""
    models = []
    for i in range(count):
        torch.manual_seed(seed + i)
        models.append(build())
    return models
