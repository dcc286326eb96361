"""Datasets as arrays: `ArrayDataset`, loading a split, the hold-out split, limited subsets.

`load_dataset(name, split)` returns uint8 images (N, C, H, W) and int64 labels (N,), checked
against the dataset's spec (shape, class count) whatever its format; `load_splits(data_cfg)`
returns the (train, validation) pair a run trains on, with `train_limit` / `val_limit` as
seeded, class-balanced subsets (`balanced_subset`). The data config is duck-typed (the fields of
`dlab.config.DataConfig`); this module does not import `dlab.config`. Must not import torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlab.data.formats import get_format
from dlab.data.sources import DatasetSpec, get_spec
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
    return load_folder(spec, locate(spec, data_dir, download=download), split)


def load_folder(spec: DatasetSpec, folder: Path, split: str) -> ArrayDataset:
    """One split of `spec` from `folder` (as `locate` returns it), checked against the spec."""
    images, labels = get_format(spec.kind).load(Path(folder), spec, split)
    where = f"dataset {spec.name!r} ({split}) in {str(folder)!r}"
    if images.dtype != np.uint8 or images.shape[1:] != tuple(spec.shape):
        raise DlabError(f"{where}: images are {images.dtype} {tuple(images.shape)}; expected "
                        f"uint8 (N, {', '.join(map(str, spec.shape))})")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DlabError(f"{where}: {len(images)} images but labels of shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(spec.classes)):
        raise DlabError(f"{where}: labels span {labels.min()}..{labels.max()}; expected "
                        f"0..{len(spec.classes) - 1}")
    return ArrayDataset(spec.name, split, images, labels.astype(np.int64, copy=False),
                        spec.classes)


def holdout_split(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded (train_index, val_index) partition of range(n) with `val_size` held out."""
    if not 0 < val_size < n:
        raise DlabError(f"data.val_size = {val_size}; expected between 1 and {n - 1}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[val_size:]), np.sort(order[:val_size])


def balanced_subset(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Indices of a seeded subset of `limit` items with an equal share of each class.

    Every class present gets limit // k items (k = number of classes present); the remainder
    goes one item each to classes chosen by `seed`; a class with too few items gives its unused
    share to the others. Within a class the items are a seeded random choice (a prefix of a
    class-sorted archive would be one class). The same (labels, limit, seed) give the same
    subset, and `limit >= len(labels)` gives every index.

    Args:
        labels: int (N,).
    Returns:
        int64 indices into `labels`, sorted ascending (the dataset's own order), length
        min(limit, N).
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    take = np.zeros(len(classes), dtype=np.int64)
    remaining = min(limit, len(labels))
    open_ = np.flatnonzero(take < counts)
    while remaining > 0:
        share, extra = divmod(remaining, len(open_))
        want = np.full(len(open_), share)
        want[rng.permutation(len(open_))[:extra]] += 1
        got = np.minimum(want, counts[open_] - take[open_])
        take[open_] += got
        remaining -= int(got.sum())
        open_ = np.flatnonzero(take < counts)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:n] for c, n in zip(classes, take)]
    return np.sort(np.concatenate(chosen)).astype(np.int64) if chosen else np.zeros(0, np.int64)


def load_splits(data_cfg, data_dir: str | os.PathLike | None = None
                ) -> tuple[ArrayDataset, ArrayDataset]:
    """The (train, validation) datasets for a `DataConfig`.

    validation = "test" uses the test set as the validation set (the JHU assignment's choice);
    "holdout" holds out `val_size` training images chosen by `split_seed`. `train_limit` /
    `val_limit` (0 = all) keep a class-balanced subset chosen by `split_seed`.
    """
    train = load_dataset(data_cfg.dataset, "train", data_dir)
    if data_cfg.validation == "test":
        val = load_dataset(data_cfg.dataset, "test", data_dir)
    else:
        train_idx, val_idx = holdout_split(len(train), data_cfg.val_size, data_cfg.split_seed)
        train, val = train.subset(train_idx), train.subset(val_idx, split="holdout")
    if data_cfg.train_limit:
        train = train.subset(balanced_subset(train.labels, data_cfg.train_limit,
                                             data_cfg.split_seed))
    if data_cfg.val_limit:
        val = val.subset(balanced_subset(val.labels, data_cfg.val_limit, data_cfg.split_seed))
    return train, val

