"""The analysis experiments' networks, built by the torch engine from `dlab.config` model configs.

MLPs are `MLPConfig` nets (Flatten → [Linear → activation]… → Linear) for any input width
(1-D functions use in_shape (1, 1, 1)); CNNs are `CNNConfig` VGG-style nets without batch norm
and with a flatten head. No batch norm and no dropout anywhere: the nets must have no buffers
and be deterministic functions of their parameters, so that many copies can be stacked and
trained with `dlab.analysis.batched`. Imports torch.
"""

from __future__ import annotations

import torch
from torch import nn

from dlab.config import CNNConfig, MLPConfig
from dlab.torch_engine.models import ACTIVATIONS, build_model


def mlp(sizes: tuple[int, ...], act: str = "relu") -> nn.Module:
    """A fully connected net with layer widths `sizes` (input width first, output width last)."""
    cfg = MLPConfig(hidden=tuple(sizes[1:-1]), activation=act)
    return build_model(cfg, (sizes[0], 1, 1), sizes[-1])


def cnn(channels: tuple[int, ...], convs_per_stage: int = 1, num_classes: int = 10,
        in_shape: tuple[int, int, int] = (1, 28, 28)) -> nn.Module:
    """Stages of 3x3 convs + ReLU, each stage ending in a 2x2 max pool, then flatten → Linear.

    Args:
        channels: output channels per stage; depth = len(channels) * convs_per_stage.
    """
    cfg = CNNConfig(channels=tuple(channels), convs_per_stage=convs_per_stage, batch_norm=False,
                    head="flatten")
    return build_model(cfg, in_shape, num_classes)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def init_copies(build, count: int, seed: int) -> list[nn.Module]:
    """`count` freshly initialized copies of `build()`, copy i seeded with seed + i."""
    models = []
    for i in range(count):
        torch.manual_seed(seed + i)
        models.append(build())
    return models


__all__ = ["ACTIVATIONS", "mlp", "cnn", "count_params", "init_copies"]
