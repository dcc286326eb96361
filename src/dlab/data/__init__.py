"""Datasets as numpy arrays: MNIST, Fashion-MNIST (IDX) and CIFAR-10 (binary, python, folders).

`load_dataset(name, split)` returns an `ArrayDataset` with uint8 images (N, C, H, W) and int64
labels (N,); `load_splits(data_cfg)` returns the (train, validation) pair a run trains on, with
`train_limit` / `val_limit` as seeded, class-balanced subsets (`balanced_subset`);
`dataset_stats(name)` gives a dataset's own per-channel mean and std.

Where things go: a new dataset is one `DatasetSpec` entry in `dlab.data.sources.DATASETS`; a
new storage format is one class registered in `dlab.data.formats.FORMATS`. The modules:
`sources` (the registry, pure data), `formats` (kind -> format), `idx` / `cifar` / `imagefolder`
(the formats), `store` (lookup order, download into the user data dir), `download` (mirrors,
checksums), `cache` (decoded arrays), `arrays` (ArrayDataset, loading, splits and subsets).
Imports point one way: sources <- download <- cache, idx, imagefolder <- cifar <- formats <-
store <- arrays; no module imports `dlab.config` or `dlab.runs`.

This package's top level imports only `sources` (no numpy, no torch: config validation imports
the registry); the array API is loaded on first use. Nothing in `dlab.data` imports torch but
`dlab.data.augment` (batched augmentation on the device); device-resident batching lives in
`dlab.torch_engine.batches`.
"""

from __future__ import annotations

from dlab.data.sources import DATASETS, DatasetSpec, dataset_stats, get_spec

_ARRAY_API = ("ArrayDataset", "SPLITS", "balanced_subset", "holdout_split", "load_dataset",
              "load_folder", "load_splits")


def __getattr__(name: str):
    # PEP 562: `from dlab.data import load_dataset` imports numpy only when it is asked for.
    if name in _ARRAY_API:
        from dlab.data import arrays

        return getattr(arrays, name)
    raise AttributeError(f"module 'dlab.data' has no attribute {name!r}")


__all__ = ["DATASETS", "DatasetSpec", "dataset_stats", "get_spec", *_ARRAY_API]
