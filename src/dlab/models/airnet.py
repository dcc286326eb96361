"""A fast CIFAR-10 net in the airbench style ("airnet"), dlab's own code after the ideas of
Keller Jordan's airbench (github.com/KellerJordan/cifar10-airbench).

    whitening conv (2x2 patches, frozen weights from the training data) → activation
    → per width: conv3x3 → max-pool 2 → BN → act → conv3x3 → BN → act
    → global max-pool → linear (no bias) × `head_scale`

- The first layer's filters are the training images' patch-whitening (PCA) basis, each
  eigenvector with both signs (2·3·p² filters), fixed: the net starts from decorrelated inputs.
  The builder cannot see data, so the model exposes `data_init(x)`, which the classification
  session calls once with normalized training images before training (a checkpoint restores
  the same weights: they are parameters). Its bias trains; with `whiten_bias_epochs` set, it
  starts at zero and trains for that many epochs only (the session calls `start_epoch` before
  each epoch).
- Pooling right after the block's first conv, before its BN and activation: those then run on
  a quarter of the positions.
- Batch norm without the learned scale (`bn_scale = false`): only the shift is trained.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlab.models import LARGEST_INPUT, ModelSpec, check, check_activation, check_size


@dataclass(frozen=True)
class AirNetConfig:
    name: str = "airnet"
    widths: tuple[int, ...] = (64, 256, 256)  # one conv group (two 3x3 convs, one pool) each
    whiten_patch: int = 2  # the whitening layer's patch size (0: a plain learned 3x3 conv)
    whiten_channels: int = 0  # 0: 2·C·p² (every eigenvector, both signs); fewer keeps the top
    # airbench's whitening bias (3): it starts at zero, trains for the first N epochs only, then
    # stays; 0: it starts as PyTorch initializes a conv's bias and trains throughout
    whiten_bias_epochs: int = 0
    bn_scale: bool = False  # learn batch norm's scale (airbench: fixed at 1)
    bn_momentum: float = 0.4  # running-statistics momentum (PyTorch's sense)
    activation: str = "gelu"
    head_scale: float = 1 / 9  # the logits' multiplier
    # each 3x3 conv starts as the identity on its first in-channels filters (a Dirac delta;
    # the rest as PyTorch initializes them), as airbench's convs do
    dirac: bool = False

    def validate(self) -> None:
        check(len(self.widths) >= 1 and all(w >= 1 for w in self.widths),
              f"model.widths = {list(self.widths)}; expected positive widths, e.g. [64, 256, 256]")
        check(0 <= self.whiten_patch <= 8,
              f"model.whiten_patch = {self.whiten_patch}; expected 0 (off) to 8 pixels")
        full = 2 * LARGEST_INPUT[0] * self.whiten_patch ** 2
        check(self.whiten_bias_epochs >= 0,
              f"model.whiten_bias_epochs = {self.whiten_bias_epochs}; expected >= 0 (0: the "
              "bias trains throughout)")
        check(self.whiten_patch or not self.whiten_bias_epochs,
              f"model.whiten_bias_epochs = {self.whiten_bias_epochs} needs the whitening layer; "
              "expected 0 with model.whiten_patch = 0")
        check(self.whiten_channels >= 0
              and (self.whiten_channels <= full or self.whiten_patch == 0),
              f"model.whiten_channels = {self.whiten_channels}; expected 0 (all: 2·C·p²) to "
              f"{full} for whiten_patch = {self.whiten_patch}")
        check(0.0 < self.bn_momentum <= 1.0,
              f"model.bn_momentum = {self.bn_momentum}; expected a value in (0, 1]")
        check(self.head_scale > 0, f"model.head_scale = {self.head_scale}; expected > 0")
        check_activation(self.activation)
        check_size("model.widths", list(self.widths), self.parameters(), "500 M parameters")

    def parameters(self) -> float:
        c = LARGEST_INPUT[0]
        c_in = self.stem_channels(c)
        total = c_in * (c * max(self.whiten_patch, 3) ** 2 + 1)
        for w in self.widths:
            total += 9.0 * c_in * w + 9.0 * w * w + 2 * w
            c_in = w
        return total + 10.0 * c_in

    def stem_channels(self, channels: int) -> int:
        if self.whiten_patch == 0:
            return self.widths[0]
        return self.whiten_channels or 2 * channels * self.whiten_patch ** 2


def build(cfg: AirNetConfig, in_shape: tuple[int, int, int], num_classes: int):
    import torch
    from torch import nn

    from dlab.errors import DlabError
    from dlab.torch_engine.blocks import activation

    def bn(c: int) -> nn.BatchNorm2d:
        norm = nn.BatchNorm2d(c, momentum=cfg.bn_momentum)
        norm.weight.requires_grad_(cfg.bn_scale)
        return norm

    class Scale(nn.Module):
        def __init__(self, factor: float):
            super().__init__()
            self.factor = factor

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.factor

    class AirNet(nn.Sequential):
        def start_epoch(self, epoch: int) -> None:
            """Called before each epoch (0-based): freezes the whitening bias after
            `whiten_bias_epochs` (an optimizer skips parameters without gradients)."""
            if cfg.whiten_bias_epochs:  # validated: only with the whitening layer
                self[0].bias.requires_grad_(epoch < cfg.whiten_bias_epochs)

        def data_init(self, x: torch.Tensor) -> None:
            """Set the whitening filters from normalized training images `x` (N, C, H, W)."""
            if cfg.whiten_patch == 0:
                return
            conv = self[0]
            p = cfg.whiten_patch
            with torch.no_grad():
                patches = x.float().unfold(2, p, 1).unfold(3, p, 1)  # N C H' W' p p
                patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, x.shape[1] * p * p)
                patches = patches.double()
                centred = patches - patches.mean(0)
                cov = centred.T @ centred / len(centred)
                values, vectors = torch.linalg.eigh(cov)  # ascending
                basis = (vectors / (values + 5e-4).sqrt()).T.flip(0)  # largest variance first
                basis = torch.cat([basis, -basis]).reshape(-1, x.shape[1], p, p)
                keep = conv.out_channels
                order = torch.cat([torch.arange(keep // 2), len(basis) // 2
                                   + torch.arange(keep - keep // 2)])
                conv.weight.copy_(basis[order].to(conv.weight.dtype))

    c, h, w = in_shape
    layers: list[nn.Module] = []
    if cfg.whiten_patch:
        if cfg.whiten_patch > min(h, w):
            raise DlabError(f"model.whiten_patch = {cfg.whiten_patch}; expected at most "
                            f"{min(h, w)} for images of {h}x{w}")
        stem = cfg.stem_channels(c)
        whiten = nn.Conv2d(c, stem, cfg.whiten_patch)
        whiten.weight.requires_grad_(False)
        if cfg.whiten_bias_epochs:
            nn.init.zeros_(whiten.bias)
        layers += [whiten, activation(cfg.activation)]
        side = min(h, w) - cfg.whiten_patch + 1
    else:
        stem = cfg.widths[0]
        layers += [nn.Conv2d(c, stem, 3, padding=1, bias=False), bn(stem),
                   activation(cfg.activation)]
        side = min(h, w)

    def conv3(c_in: int, c_out: int) -> nn.Conv2d:
        conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        if cfg.dirac:
            with torch.no_grad():
                nn.init.dirac_(conv.weight[:min(c_in, c_out)])
        return conv

    c_in = stem
    for width in cfg.widths:
        if side < 2:
            raise DlabError(f"model.widths = {list(cfg.widths)}: {len(cfg.widths)} pooling "
                            f"groups do not fit images of {h}x{w}; expected fewer widths")
        layers += [conv3(c_in, width), nn.MaxPool2d(2), bn(width), activation(cfg.activation),
                   conv3(width, width), bn(width), activation(cfg.activation)]
        c_in, side = width, side // 2
    layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes, bias=False),
               Scale(cfg.head_scale)]
    return AirNet(*layers)


MODEL = ModelSpec("airnet", AirNetConfig, build,
                  doc="airbench-style fast CIFAR-10 net: patch whitening, pool before BN")
