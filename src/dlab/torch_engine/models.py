"""Build a classifier from its model config: the architectures live in `dlab.models`, one
module each (config class + builder, registered together). A variant is a config value.

All models take normalized float input (N, C, H, W) and return logits (N, num_classes).
"""

from __future__ import annotations

from torch import nn

from dlab.errors import DlabError
from dlab.models import get_model, models
from dlab.torch_engine.blocks import ACTIVATIONS, Residual  # noqa: F401 (shared names)


def count_params(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def model_builders() -> dict:
    """name -> builder of every registered architecture."""
    return {name: spec.build for name, spec in models().items()}


def build_model(cfg, in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Build the model named by `cfg.name` for inputs (C, H, W) and `num_classes` outputs."""
    spec = get_model(cfg.name)
    try:
        return spec.build(cfg, tuple(in_shape), num_classes)
    except (RuntimeError, ValueError) as exc:  # e.g. too many pools for the image size
        raise DlabError(f"model {cfg.name!r} does not fit inputs of shape {tuple(in_shape)}: "
                        f"{str(exc).splitlines()[0]}") from None


def first_conv_or_linear(model: nn.Module) -> nn.Module | None:
    """The first Conv2d or Linear layer (its weights are drawn as the 'first-layer filters')."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            return module
    return None
