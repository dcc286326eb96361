"""The JHU assignment's default net ("net") with every knob its questions turn."""

from __future__ import annotations

import math
from dataclasses import dataclass

from dlab.models import LARGEST_INPUT, MAX_PARAMETERS, ModelSpec, check, check_fraction, \
    check_size

REMOVABLE = ("", "fc2", "conv2")


@dataclass(frozen=True)
class NetConfig:
    """conv(1→10,k5) → maxpool2 → ReLU → conv(10→20,k5) → maxpool2 → ReLU → fc(320→50) → ReLU →
    dropout → fc(50→10): 21,840 parameters at width 1.
    """

    name: str = "net"
    width: float = 1.0  # multiplies conv channels and fc1 width: 0.5 → 5/10 & 25, 2 → 20/40 & 100
    dropout: float = 0.5  # before fc2
    bn_conv1: bool = False  # batch norm right after conv1
    conv1_dropout: float = 0.0  # dropout right after conv1's batch norm (or after conv1)
    bn_after_dropout: bool = False  # place conv1's batch norm after that dropout instead of before
    extra_conv: bool = False  # one more conv layer (3x3, same padding) after conv2
    remove: str = ""  # "" or the layer removed: "fc2" (fc1 maps to the classes) or "conv2"

    def validate(self) -> None:
        check(self.width > 0, f"model.width = {self.width}; expected > 0 (0.5, 1, 2 ...)")
        check(math.isfinite(self.width), f"model.width = {self.width}; expected a finite number")
        most = max_width()
        check_size("model.width", self.width, parameters(self.width), f"{most:g}")
        check(self.remove in REMOVABLE, f"model.remove = {self.remove!r}; expected one of: "
              + ", ".join(repr(r) for r in REMOVABLE))
        check(not self.bn_after_dropout or self.bn_conv1,
              "model.bn_after_dropout = true needs model.bn_conv1 = true")
        check_fraction("dropout", self.dropout)
        check_fraction("model.conv1_dropout", self.conv1_dropout)


def parameters(width: float, in_shape: tuple[int, int, int] = LARGEST_INPUT,
               num_classes: int = 10) -> float:
    """About how many parameters the net of `width` has (no extra conv, nothing removed)."""
    c1, c2, hidden = (max(1.0, n * width) for n in (10, 20, 50))
    side = ((in_shape[1] - 4) // 2 - 4) // 2
    flat = c2 * side * side
    return (in_shape[0] * 25 + 1) * c1 + (c1 * 25 + 1) * c2 + (flat + 1) * hidden \
        + (hidden + 1) * num_classes


def max_width() -> float:
    """The largest width (to 1 decimal) whose net stays within MAX_PARAMETERS."""
    lo, hi = 1.0, 1e6
    while hi - lo > 0.05:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if parameters(mid) <= MAX_PARAMETERS else (lo, mid)
    return math.floor(lo * 10) / 10


def build(cfg: NetConfig, in_shape: tuple[int, int, int], num_classes: int):
    """conv1(k5) → [BN] → [dropout] → maxpool2 → ReLU → conv2(k5) → maxpool2 → ReLU → [conv3(k3)
    → ReLU] → flatten → fc1 → ReLU → dropout → fc2. `bn_after_dropout` swaps BN and dropout.
    """
    from collections import OrderedDict

    from torch import nn

    from dlab.torch_engine.blocks import flat_size

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
    flat = flat_size(features, in_shape)
    if cfg.remove == "fc2":
        head = [("fc1", nn.Linear(flat, num_classes))]
    else:
        head = [("fc1", nn.Linear(flat, hidden)), ("relu_fc1", nn.ReLU()),
                ("dropout", nn.Dropout(cfg.dropout)), ("fc2", nn.Linear(hidden, num_classes))]
    return nn.Sequential(OrderedDict(list(features.named_children()) + head))


# invariant through dlab's fused conv → pool → ReLU kernel (fixed-chunk reductions), which
# replaces both convs of the default net on the CPU; a knob that breaks a conv → pool → ReLU run
# (bn_conv1, conv1_dropout, extra_conv) leaves a PyTorch conv backward, which is not invariant
def _thread_invariant(cfg: NetConfig) -> bool:
    return not (cfg.bn_conv1 or cfg.conv1_dropout > 0 or cfg.extra_conv)


MODEL = ModelSpec("net", NetConfig, build, thread_invariant=_thread_invariant,
                  doc="the JHU assignment's default net and its knobs")
