"""Small torch building blocks shared by the architectures in `dlab.models`."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU, "silu": nn.SiLU, "elu": nn.ELU,
}


def activation(name: str) -> nn.Module:
    return ACTIVATIONS[name]()


def flat_size(layers: nn.Module, in_shape: tuple[int, int, int]) -> int:
    """The flattened output size of `layers` for one input of shape (C, H, W)."""
    layers.eval()  # batch norm cannot train on the single probe image
    with torch.no_grad():
        size = int(layers(torch.zeros(1, *in_shape)).flatten(1).shape[1])
    layers.train()
    return size


class Residual(nn.Module):
    """x + body(x)."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)
