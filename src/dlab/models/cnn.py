"""A VGG-style (or, with residual = true, ResNet-style) CNN in stages of 3x3 convs ("cnn")."""

from __future__ import annotations

from dataclasses import dataclass

from dlab.models import LARGEST_INPUT, ModelSpec, check, check_activation, check_fraction, \
    check_size


@dataclass(frozen=True)
class CNNConfig:
    """Stages of 3x3 convs, each with a 2x2 pool, then global pooling (or flatten) and a fc."""

    name: str = "cnn"
    channels: tuple[int, ...] = (32, 64, 128)  # one stage per entry, each ending in a 2x2 pool
    convs_per_stage: int = 2
    residual: bool = False  # wrap each stage's convs after the first in residual blocks
    batch_norm: bool = True
    activation: str = "relu"
    pool: str = "max"  # "max" or "avg"
    dropout: float = 0.0  # before the classifier
    head: str = "pool"  # "pool": global pooling then fc; "flatten": flatten then fc
    # pool right after the conv that precedes it, before its BN and activation (conv -> pool ->
    # BN -> act, as in airbench): a quarter of the BN/activation work at full resolution
    pool_first: bool = False

    def validate(self) -> None:
        check(len(self.channels) >= 1 and all(c >= 1 for c in self.channels),
              f"model.channels = {list(self.channels)}; expected positive channel counts")
        check(self.convs_per_stage >= 1,
              f"model.convs_per_stage = {self.convs_per_stage}; expected >= 1")
        check_size("model.channels", list(self.channels), self.parameters(),
                   "500 M parameters")
        check_activation(self.activation)
        check(self.pool in ("max", "avg"), f"model.pool = {self.pool!r}; expected 'max' or 'avg'")
        check(self.head in ("pool", "flatten"),
              f"model.head = {self.head!r}; expected 'pool' or 'flatten'")
        check_fraction("dropout", self.dropout)


    def parameters(self) -> float:
        """About how many parameters the convs and the classifier hold (3x3 kernels, the head
        on flattened features of the largest input when head = "flatten")."""
        total, c_in, side = 0.0, LARGEST_INPUT[0], LARGEST_INPUT[1]
        for c in self.channels:
            total += 9.0 * c_in * c + 9.0 * c * c * (self.convs_per_stage - 1)
            c_in, side = c, max(1, side // 2)
        flat = c_in * (side * side if self.head == "flatten" else 1)
        return total + 10.0 * flat


def _conv_unit(c_in: int, c_out: int, cfg: CNNConfig, pool=None) -> list:
    """conv → (BN) → activation, then `pool`; with cfg.pool_first the pool comes right after
    the conv (BN statistics and the activation then work on a quarter of the positions)."""
    from torch import nn

    from dlab.torch_engine.blocks import activation

    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not cfg.batch_norm)]
    if pool is not None and cfg.pool_first:
        layers.append(pool)
    if cfg.batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(activation(cfg.activation))
    if pool is not None and not cfg.pool_first:
        layers.append(pool)
    return layers


def build(cfg: CNNConfig, in_shape: tuple[int, int, int], num_classes: int):
    """residual = false: per stage `convs_per_stage` conv units then a pool (VGG).
    residual = true: per stage one conv unit, a pool, then the remaining conv units wrapped in
    one residual block (as in the DAWNBench ResNet-9 / airbench nets).
    """
    from torch import nn

    from dlab.torch_engine.blocks import Residual, flat_size

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
    flat = flat_size(features, in_shape)
    head: list[nn.Module] = [nn.Dropout(cfg.dropout)] if cfg.dropout > 0 else []
    return nn.Sequential(*features, *head, nn.Linear(flat, num_classes))


MODEL = ModelSpec("cnn", CNNConfig, build, doc="VGG-style or ResNet-style stages of 3x3 convs")
