"""A whole dataset on the device as uint8, served as shuffled, augmented, normalized batches.

No DataLoader and no worker processes: indexing a resident uint8 tensor is far cheaper than
per-sample Python conversion, and augmentation runs batched on the device.
Shapes: images (N, C, H, W) uint8, labels (N,) int64; batches come out float (B, C, H, W).
"""

from __future__ import annotations

from typing import Iterator

import torch

from dlab.config import AugmentConfig, DataConfig
from dlab.data import ArrayDataset
from dlab.errors import DlabError


def _channel_stats(values: tuple[float, ...], channels: int, name: str) -> torch.Tensor:
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        raise DlabError(f"data.{name} has {len(values)} values; the images have {channels} channels")
    return torch.tensor(values, dtype=torch.float32).view(1, channels, 1, 1)


class DeviceData:
    """One split resident on `device`, with the normalization of its `DataConfig`."""

    def __init__(self, ds: ArrayDataset, data_cfg: DataConfig, device: torch.device,
                 channels_last: bool = False):
        self.name = ds.name
        self.classes = ds.classes
        self.device = device
        self.images = torch.from_numpy(ds.images.copy()).to(device)
        self.labels = torch.from_numpy(ds.labels.copy()).to(device)
        channels = self.images.shape[1]
        mean, std = data_cfg.stats()
        self.mean = _channel_stats(mean, channels, "mean").to(device)
        self.std = _channel_stats(std, channels, "std").to(device)
        self.channels_last = channels_last
        # how shifted views fill the uncovered edge: as the training crop pads (test-time views)
        self.shift_fill = data_cfg.augment.crop_fill
        self.augmenter = None
        self.flip_first = None  # alternating flips: which images the first epoch flips

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return len(self.labels)

    def set_augmentation(self, cfg: AugmentConfig, seed: int = 0) -> None:
        """Augment training batches as `cfg` says; `seed` draws alternating flips' first epoch
        (from its own generator, so it is the same in a resumed run)."""
        if cfg.enabled():
            from dlab.data.augment import Augmenter

            self.augmenter = Augmenter(cfg)
        if cfg.flip and cfg.flip_mode == "alternate":
            draw = torch.rand(len(self), generator=torch.Generator().manual_seed(seed))
            self.flip_first = (draw < 0.5).to(self.device)

    def prepare(self, images: torch.Tensor, generator: torch.Generator | None = None,
                flips: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 images → (augmented) normalized float, in the model's memory format."""
        x = images.float().div_(255.0)
        if self.augmenter is not None and generator is not None:
            x = self.augmenter(x, generator, flips)
        x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def batches(self, batch_size: int, generator: torch.Generator | None = None, epoch: int = 0
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches in order, or shuffled (and augmented) when a generator is given; `epoch`
        (0-based) sets alternating flips' side."""
        n = len(self)
        flips = None
        if self.flip_first is not None and generator is not None:
            flips = self.flip_first ^ bool(epoch % 2)
        if generator is not None:
            order = torch.randperm(n, generator=generator, device=generator.device).to(self.device)
        else:
            order = None
        for start in range(0, n, batch_size):
            if order is None:
                idx = slice(start, start + batch_size)
                yield self.prepare(self.images[idx]), self.labels[idx]
            else:
                idx = order[start:start + batch_size]
                yield (self.prepare(self.images[idx], generator,
                                    None if flips is None else flips[idx]), self.labels[idx])
