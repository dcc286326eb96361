"""The GaTech HW2 shallow convnet ("convnet"): [conv - ReLU - 2x2 max-pool] x N - [affine] x M.

The course's setting is the default: one conv of 32 filters 7x7, "same" padding, stride 1 →
ReLU → 2x2 max-pool → affine → softmax (the cross-entropy of the task). Its variations are
config values: `kernel` (filter size), `filters` (one count per conv block, so its length is
N), `hidden` (the widths of the affine layers before the classifier, so M = len(hidden) + 1).

Each block is built as conv → max-pool → ReLU: ReLU is monotone, so it commutes with the max,
and the order computes the same function as the course's conv → ReLU → pool (on the CPU the
three run as one fused kernel, `dlab.torch_engine.fused`).
"""

from __future__ import annotations

from dataclasses import dataclass

from dlab.models import LARGEST_INPUT, ModelSpec, check, check_fraction, check_size


@dataclass(frozen=True)
class ConvNetConfig:
    """conv blocks (`filters`, `kernel` x `kernel`, same padding, ReLU, 2x2 max-pool), then
    affine layers of `hidden` widths (ReLU between) and the classifier."""

    name: str = "convnet"
    filters: tuple[int, ...] = (32,)  # one conv-ReLU-pool block per entry
    kernel: int = 7  # filter size, odd ("same" padding of kernel // 2)
    hidden: tuple[int, ...] = ()  # affine layers before the classifier
    batch_norm: bool = False  # batch norm after each conv
    dropout: float = 0.0  # before each affine layer

    def validate(self) -> None:
        check(len(self.filters) >= 1 and all(f >= 1 for f in self.filters),
              f"model.filters = {list(self.filters)}; expected one positive filter count per "
              "conv block, e.g. [32]")
        check(all(h >= 1 for h in self.hidden),
              f"model.hidden = {list(self.hidden)}; expected positive widths (or [] for none)")
        check(self.kernel >= 1 and self.kernel % 2 == 1,
              f"model.kernel = {self.kernel}; expected an odd filter size (1, 3, 5, 7 ...): "
              "'same' padding keeps the image size only for odd sizes")
        most = _most_blocks(LARGEST_INPUT[1])
        check(len(self.filters) <= most,
              f"model.filters = {list(self.filters)}: {len(self.filters)} conv blocks; expected "
              f"at most {most} (each 2x2 pool halves the image, and the largest images, "
              f"{LARGEST_INPUT[1]}x{LARGEST_INPUT[2]}, are 1 pixel wide after {most})")
        side = _fits(self.kernel, self.filters, LARGEST_INPUT[1])
        check(side is None, f"model.kernel = {self.kernel} with {len(self.filters)} conv "
              f"block(s); expected a filter of at most {side} pixels (the largest images, "
              f"{LARGEST_INPUT[1]}x{LARGEST_INPUT[2]}, are {side} pixels wide at that block)")
        check_size("model.filters", list(self.filters), self.parameters(), "500 M parameters")
        check_fraction("model.dropout", self.dropout)

    def parameters(self, in_shape: tuple[int, int, int] = LARGEST_INPUT,
                   num_classes: int = 10) -> int:
        """The parameter count for inputs of `in_shape` (batch norm's two per channel included)."""
        total, c_in, side = 0, in_shape[0], in_shape[1]
        for f in self.filters:
            total += (c_in * self.kernel ** 2 + 1) * f + (2 * f if self.batch_norm else 0)
            c_in, side = f, side // 2
        width = c_in * side * side
        for h in (*self.hidden, num_classes):
            total += (width + 1) * h
            width = h
        return total


def _most_blocks(side: int) -> int:
    """How many 2x2 pools images `side` wide take before they are 1 pixel wide."""
    return max(side.bit_length() - 1, 0)


def _fits(kernel: int, filters: tuple[int, ...], side: int) -> int | None:
    """None when a `kernel` filter fits every block of images `side` wide; else the width of
    the first block it does not fit. (That each block leaves a pixel to pool is
    `_most_blocks`'s check, made first.)"""
    for _ in filters:
        if kernel > side:
            return side
        side //= 2
    return None


def build(cfg: ConvNetConfig, in_shape: tuple[int, int, int], num_classes: int):
    from collections import OrderedDict

    from torch import nn

    from dlab.errors import DlabError

    most = _most_blocks(min(in_shape[1:]))
    if len(cfg.filters) > most:
        raise DlabError(f"model.filters = {list(cfg.filters)}: {len(cfg.filters)} conv blocks "
                        f"do not fit images of {in_shape[1]}x{in_shape[2]}; expected at most "
                        f"{most} (each 2x2 pool halves the image)")
    side = _fits(cfg.kernel, cfg.filters, min(in_shape[1:]))
    if side is not None:
        raise DlabError(f"model.kernel = {cfg.kernel} with {len(cfg.filters)} conv block(s) does "
                        f"not fit images of {in_shape[1]}x{in_shape[2]}; expected a filter of at "
                        f"most {side} pixels at that block (fewer blocks or a smaller kernel)")
    layers: list[tuple[str, nn.Module]] = []
    c_in, h, w = in_shape
    for i, f in enumerate(cfg.filters, 1):
        layers.append((f"conv{i}", nn.Conv2d(c_in, f, cfg.kernel, padding=cfg.kernel // 2)))
        if cfg.batch_norm:
            layers.append((f"bn{i}", nn.BatchNorm2d(f)))
        layers += [(f"pool{i}", nn.MaxPool2d(2)), (f"relu{i}", nn.ReLU())]
        c_in, h, w = f, h // 2, w // 2
    layers.append(("flatten", nn.Flatten()))
    width = c_in * h * w
    for i, hidden in enumerate(cfg.hidden, 1):
        if cfg.dropout > 0:
            layers.append((f"drop{i}", nn.Dropout(cfg.dropout)))
        layers += [(f"fc{i}", nn.Linear(width, hidden)), (f"relu_fc{i}", nn.ReLU())]
        width = hidden
    if cfg.dropout > 0:
        layers.append(("drop_out", nn.Dropout(cfg.dropout)))
    layers.append(("out", nn.Linear(width, num_classes)))
    return nn.Sequential(OrderedDict(layers))


MODEL = ModelSpec("convnet", ConvNetConfig, build,
                  doc="GaTech HW2's shallow convnet: [conv-ReLU-pool] x N - [affine] x M")
