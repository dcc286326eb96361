"""The format registry: how each `DatasetSpec.kind` is found, read and downloaded.

A format is an object with the five methods of `DatasetFormat`; `FORMATS` maps a kind to one.
**A new storage format is one class (in its own module of `dlab.data`) and one line in
`FORMATS`**; a new dataset in an existing format needs no code, only an entry in
`dlab.data.sources.DATASETS`. Formats here: "idx" (MNIST-style IDX files, `dlab.data.idx`),
"cifar10" (the official CIFAR-10 layouts or image folders, `dlab.data.cifar`), "imagefolder"
(train/ and test/ class folders of any dataset, `dlab.data.imagefolder`). Must not import torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from dlab.data.cifar import CifarFormat
from dlab.data.idx import IdxFormat
from dlab.data.imagefolder import ImageFolderFormat
from dlab.data.sources import DatasetSpec
from dlab.errors import DlabError


class DatasetFormat(Protocol):
    """How one storage format is found in a folder, read, and downloaded."""

    def present(self, folder: Path, spec: DatasetSpec) -> bool:
        """Whether `folder` holds the dataset in this format (cheap: names only)."""

    def refuse_incomplete(self, folder: Path, spec: DatasetSpec) -> None:
        """Raise DlabError when `folder` holds part of the dataset (a broken copy must not be
        skipped silently for another root or a download)."""

    def files(self, folder: Path, spec: DatasetSpec) -> list[Path]:
        """The files that make up the dataset in `folder` (a present one), for its size."""

    def load(self, folder: Path, spec: DatasetSpec, split: str) -> tuple[np.ndarray, np.ndarray]:
        """One split: images uint8 (N, C, H, W), labels int64 (N,) in 0..len(classes)-1."""

    def download(self, spec: DatasetSpec, dest: Path, timeout_s: float) -> None:
        """Fetch the official files from `spec.urls` into the existing folder `dest`, verified;
        files already there are kept."""


FORMATS: dict[str, DatasetFormat] = {
    "idx": IdxFormat(),
    "cifar10": CifarFormat(),
    "imagefolder": ImageFolderFormat(),
}


def get_format(kind: str) -> DatasetFormat:
    """The format registered for `kind`; an unknown kind is a one-line error."""
    if kind not in FORMATS:
        raise DlabError(f"unknown dataset format {kind!r}; expected one of: " + ", ".join(FORMATS))
    return FORMATS[kind]
