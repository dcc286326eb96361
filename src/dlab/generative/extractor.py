"""The FD-dlab / KID-dlab feature extractor: a small dlab CNN classifier of the dataset.

Trained once per (dataset, settings, numerics) with the ordinary classification task into
`<cache>/extractors/<dataset>-<key>/` (a run directory: re-used when done, resumed when
killed), then loaded from its last checkpoint. The key is the classifier's config key and where
it was trained: on a CPU always at one torch thread (`-cpu1`: the weights, hence every FD-dlab,
do not depend on the caller's thread count; 2 threads had given 98.4% test accuracy against
98.3% at 1, under one key), else the device type (`-cuda`). Features are its penultimate layer
(the global max-pool before the classifier, 128-d); its test accuracy and key go with every
score. Real-side features (the test set, and a training subset for the real-vs-real floor) are
cached beside it. Inputs to `features`/`predict`: float images in [-1, 1] at the dataset's size.
"""

from __future__ import annotations

import fcntl
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dlab.config import RunConfig, resolve
from dlab.io import atomic_write_bytes
from dlab.paths import cache_root

CHANNELS = (32, 64, 128)


def extractor_config(dataset: str, epochs: int, train_limit: int = 0) -> RunConfig:
    """The classifier run whose penultimate features FD-dlab uses."""
    return resolve({
        "data": {"dataset": dataset, "train_limit": train_limit},
        "model": {"name": "cnn", "channels": list(CHANNELS), "convs_per_stage": 1},
        "optim": {"name": "adam", "lr": 1e-3},
        "train": {"epochs": epochs, "batch_size": 128, "seed": 0},
    })


@dataclass
class Extractor:
    """A trained classifier split into its feature trunk and its last linear layer."""

    trunk: torch.nn.Module
    head: torch.nn.Module
    mean: torch.Tensor  # (1, C, 1, 1) the classifier's input normalization
    std: torch.Tensor
    key: str  # the classifier run's config key
    test_acc: float
    folder: Path
    size: int  # the image size it was trained on

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size:  # e.g. 64x64 samples of a 32x32 dataset
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear",
                              align_corners=False, antialias=True)
        return ((x + 1) / 2 - self.mean) / self.std

    @torch.no_grad()
    def run(self, images: torch.Tensor, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
        """(features (N, D) float64, predicted class (N,)) of images (N, C, H, W) in [-1, 1]."""
        feats, preds = [], []
        for start in range(0, len(images), batch_size):
            f = self.trunk(self._prep(images[start:start + batch_size].float()))
            feats.append(f.double().cpu())
            preds.append(self.head(f).argmax(1).cpu())
        return torch.cat(feats).numpy(), torch.cat(preds).numpy()

    def cached_real(self, name: str, images: Any, batch_size: int = 500) -> np.ndarray:
        """Features of a fixed real image set (uint8 numpy NCHW), cached as `<name>.npy`."""
        path = self.folder / f"real-{name}.npy"
        if path.exists():
            return np.load(path)
        x = torch.from_numpy(np.array(images)).to(self.mean.device)
        feats, _ = self.run(x.float() / 127.5 - 1, batch_size)
        buf = io.BytesIO()
        np.save(buf, feats)
        atomic_write_bytes(path, buf.getvalue())
        return feats


def get_extractor(dataset: str, epochs: int, train_limit: int, data_dir, device: torch.device
                  ) -> Extractor:
    """Train (once, cached) and load the extractor for `dataset`."""
    from dlab.torch_engine.checkpoint import load_checkpoint
    from dlab.torch_engine.threads import torch_threads
    from dlab.torch_engine.train import train_run

    cfg = extractor_config(dataset, epochs, train_limit)
    key = f"{cfg.hash()}-{'cpu1' if device.type == 'cpu' else device.type}"
    folder = cache_root() / "extractors" / f"{dataset}-{key}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    # parallel study workers wait for the one that trains it (run_lock itself would fail fast)
    with open(folder.parent / f"{folder.name}.lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        threads = 1 if device.type == "cpu" else torch.get_num_threads()
        with warnings.catch_warnings(), torch_threads(threads):
            warnings.simplefilter("ignore")  # TensorBoard / hparams chatter of the inner run
            result = train_run(cfg, folder, data_dir=data_dir, device=device.type,
                               progress=False)
    model, _, meta = load_checkpoint(folder / "checkpoints" / "last", device)
    mean, std = cfg.data.stats()
    c = int(meta["in_shape"][0])
    as_t = lambda v: torch.tensor((v * c) if len(v) == 1 else v,  # noqa: E731
                                  dtype=torch.float32, device=device).view(1, c, 1, 1)
    return Extractor(trunk=model[:-1], head=model[-1], mean=as_t(mean), std=as_t(std),
                     key=key, test_acc=float(result["final"]["val_acc"]), folder=folder,
                     size=int(meta["in_shape"][1]))
