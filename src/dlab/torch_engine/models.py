"""Models built from config: the assignment's default net with its knobs, a VGG/ResNet-style CNN,
and an MLP. A new variant is a config value, never a new class.

All models take normalized float input (N, C, H, W) and return logits (N, num_classes).
`MODEL_BUILDERS` maps a model config's `name` to its builder; adding an architecture means one
config dataclass in `dlab.config` and one builder here.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
from torch import nn

from dlab.config import CNNConfig, MLPConfig, ModelConfig, NetConfig
from dlab.errors import DlabError

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU, "silu": nn.SiLU, "elu": nn.ELU,
}


def count_params(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _flat_size(layers: nn.Module, in_shape: tuple[int, int, int]) -> int:
    layers.eval()  # batch norm cannot train on the single probe image
    with torch.no_grad():
        size = int(layers(torch.zeros(1, *in_shape)).flatten(1).shape[1])
    layers.train()
    return size


def build_net(cfg: NetConfig, in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """The JHU default net, with every knob of the assignment's questions.

    conv1(k5) → [BN] → [dropout] → maxpool2 → ReLU → conv2(k5) → maxpool2 → ReLU → [conv3(k3)
    → ReLU] → flatten → fc1 → ReLU → dropout → fc2. `bn_after_dropout` swaps BN and dropout.
    """
    c1, c2, hidden = (max(1, round(n * cfg.width)) for n in (10, 20, 50))
    feats: list[tuple[str, nn.Module]] = [("conv1", nn.Conv2d(in_shape[0], c1, 5))]
    norm_drop = []
    if cfg.bn_conv1:
        norm_drop.append(("bn1", nn.BatchNorm2d(c1)))
    if cfg.conv1_dropout > 0:
        norm_drop.append(("drop1", nn.Dropout(cfg.conv1_dropout)))
    if cfg.bn_after_dropout:
        norm_drop.reverse()
    feats += norm_drop + [("pool1", nn.MaxPool2d(2)), ("relu1", nn.ReLU())]
    if cfg.remove != "conv2":
        feats += [("conv2", nn.Conv2d(c1, c2, 5)), ("pool2", nn.MaxPool2d(2)),
                  ("relu2", nn.ReLU())]
    last = c2 if cfg.remove != "conv2" else c1
    if cfg.extra_conv:
        feats += [("conv3", nn.Conv2d(last, last, 3, padding=1)), ("relu3", nn.ReLU())]
    features = nn.Sequential(OrderedDict(feats + [("flatten", nn.Flatten())]))
    flat = _flat_size(features, in_shape)
    if cfg.remove == "fc2":
        head = [("fc1", nn.Linear(flat, num_classes))]
    else:
        head = [("fc1", nn.Linear(flat, hidden)), ("relu_fc1", nn.ReLU()),
                ("dropout", nn.Dropout(cfg.dropout)), ("fc2", nn.Linear(hidden, num_classes))]
    return nn.Sequential(OrderedDict(list(features.named_children()) + head))


class Residual(nn.Module):
    """x + body(x)."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _conv_unit(c_in: int, c_out: int, cfg: CNNConfig, pool: nn.Module | None = None
               ) -> list[nn.Module]:
    """conv → (BN) → activation, then `pool`; with cfg.pool_first the pool comes right after
    the conv (BN statistics and the activation then work on a quarter of the positions)."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not cfg.batch_norm)]
    if pool is not None and cfg.pool_first:
        layers.append(pool)
    if cfg.batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(ACTIVATIONS[cfg.activation]())
    if pool is not None and not cfg.pool_first:
        layers.append(pool)
    return layers


def build_cnn(cfg: CNNConfig, in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Stages of 3x3 convs, each ending (VGG) or starting (ResNet-9 style) with a 2x2 pool.

    residual = false: per stage `convs_per_stage` conv units then a pool (VGG).
    residual = true: per stage one conv unit, a pool, then the remaining conv units wrapped in
    one residual block (as in the DAWNBench ResNet-9 / airbench nets).
    """
    pool_cls = nn.MaxPool2d if cfg.pool == "max" else nn.AvgPool2d
    layers: list[nn.Module] = []
    c_in = in_shape[0]
    for c in cfg.channels:
        if cfg.residual:
            layers += _conv_unit(c_in, c, cfg, pool_cls(2))
            body = [m for _ in range(cfg.convs_per_stage - 1) for m in _conv_unit(c, c, cfg)]
            if body:
                layers.append(Residual(nn.Sequential(*body)))
        else:
            for i in range(cfg.convs_per_stage):
                last = i == cfg.convs_per_stage - 1
                layers += _conv_unit(c_in if i == 0 else c, c, cfg, pool_cls(2) if last else None)
        c_in = c
    if cfg.head == "pool":
        global_pool = nn.AdaptiveMaxPool2d(1) if cfg.pool == "max" else nn.AdaptiveAvgPool2d(1)
        layers += [global_pool, nn.Flatten()]
    else:
        layers.append(nn.Flatten())
    features = nn.Sequential(*layers)
    flat = _flat_size(features, in_shape)
    head: list[nn.Module] = [nn.Dropout(cfg.dropout)] if cfg.dropout > 0 else []
    return nn.Sequential(*features, *head, nn.Linear(flat, num_classes))


def build_mlp(cfg: MLPConfig, in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """flatten → [Linear → (BN) → activation → (dropout)] per hidden width → Linear."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_shape[0] * in_shape[1] * in_shape[2]
    for h in cfg.hidden:
        layers.append(nn.Linear(width, h))
        if cfg.batch_norm:
            layers.append(nn.BatchNorm1d(h))
        layers.append(ACTIVATIONS[cfg.activation]())
        if cfg.dropout > 0:
            layers.append(nn.Dropout(cfg.dropout))
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


MODEL_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "net": build_net, "cnn": build_cnn, "mlp": build_mlp,
}


def build_model(cfg: ModelConfig, in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Build the model named by `cfg.name` for inputs (C, H, W) and `num_classes` outputs."""
    if cfg.name not in MODEL_BUILDERS:
        raise DlabError(f"unknown model {cfg.name!r}; expected one of: " + ", ".join(MODEL_BUILDERS))
    try:
        return MODEL_BUILDERS[cfg.name](cfg, tuple(in_shape), num_classes)
    except (RuntimeError, ValueError) as exc:  # e.g. too many pools for the image size
        raise DlabError(f"model {cfg.name!r} does not fit inputs of shape {tuple(in_shape)}: "
                        f"{str(exc).splitlines()[0]}") from None


def first_conv_or_linear(model: nn.Module) -> nn.Module | None:
    """The first Conv2d or Linear layer (its weights are drawn as the 'first-layer filters')."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            return module
    return None
