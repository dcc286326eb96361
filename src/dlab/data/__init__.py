"""Datasets as numpy arrays: MNIST, Fashion-MNIST (IDX) and CIFAR-10 (binary, python, folders).

`load_dataset(name, split)` returns an `ArrayDataset` with uint8 images (N, C, H, W) and int64
labels (N,); `load_splits(data_cfg)` returns the (train, validation) pair a run trains on.
This package's top level must not import torch: the numpy engine uses it. Only
`dlab.data.augment` (batched augmentation on the device) imports torch; device-resident batching
lives in `dlab.torch_engine.batches`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from dlab.data.sources import DATASETS, DatasetSpec, get_spec
from dlab.data.store import locate
from dlab.errors import DlabError

SPLITS = ("train", "test")


@dataclass(frozen=True)
class ArrayDataset:
    """Images uint8 (N, C, H, W), labels int64 (N,), and the class names."""

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray | slice, split: str | None = None) -> "ArrayDataset":
        return ArrayDataset(self.name, split or self.split, self.images[index],
                            self.labels[index], self.classes)


def load_dataset(name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
                 download: bool = True) -> ArrayDataset:
    """Load one split of a dataset, found by dlab's lookup order (see `dlab.data.store`)."""
    spec = get_spec(name)
    if split not in SPLITS:
        raise DlabError(f"unknown split {split!r}; expected 'train' or 'test'")
    folder = locate(spec, data_dir, download=download)
    if spec.kind == "idx":
        from dlab.data.idx import load_idx_split

        images, labels = load_idx_split(folder, spec.files[split], spec.sha256)
    else:
        from dlab.data.cifar import load_cifar10

        images, labels = load_cifar10(folder, split)
    return ArrayDataset(name, split, images, labels, spec.classes)


def holdout_split(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded (train_index, val_index) partition of range(n) with `val_size` held out."""
    if not 0 < val_size < n:
        raise DlabError(f"data.val_size = {val_size}; expected between 1 and {n - 1}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[val_size:]), np.sort(order[:val_size])


def load_splits(data_cfg, data_dir: str | os.PathLike | None = None
                ) -> tuple[ArrayDataset, ArrayDataset]:
    """The (train, validation) datasets for a `DataConfig`.

    validation = "test" uses the test set as the validation set (the JHU assignment's choice);
    "holdout" holds out `val_size` training images chosen by `split_seed`.
    """
    train = load_dataset(data_cfg.dataset, "train", data_dir)
    if data_cfg.validation == "test":
        val = load_dataset(data_cfg.dataset, "test", data_dir)
    else:
        train_idx, val_idx = holdout_split(len(train), data_cfg.val_size, data_cfg.split_seed)
        train, val = train.subset(train_idx), train.subset(val_idx, split="holdout")
    if data_cfg.train_limit:
        train = train.subset(slice(0, data_cfg.train_limit))
    if data_cfg.val_limit:
        val = val.subset(slice(0, data_cfg.val_limit))
    return train, val


__all__ = ["ArrayDataset", "DATASETS", "DatasetSpec", "get_spec", "load_dataset", "load_splits",
           "holdout_split"]
