"""The decoded-array cache: `.npy` files under the user cache dir, keyed by the source's checksum.

Decoding CIFAR-10 (60k JPEGs, or a 170 MB tarball) takes seconds; reading the decoded arrays
back takes a fraction of one. A cache entry is the folder
`<dlab cache root>/decoded/<dataset>-<digest[:24]>/` holding `<split>-images.npy` and
`<split>-labels.npy`. The key is the SHA-256 of the archive file, or, for a plain directory, of
its file list with sizes, so an edited source never serves stale arrays. Each file is written
atomically, so a crash leaves either no entry or a whole one; an unreadable entry is a miss, and
a cache that cannot be written (read-only or full disk) costs a warning and a decode next time,
never the load. Imports only `dlab.paths` and `dlab.io` of dlab; must not import torch.
"""

from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from dlab.io import atomic_write_bytes
from dlab.paths import cache_root

_CHUNK = 1 << 20

Splits = dict[str, tuple[np.ndarray, np.ndarray]]


def file_digest(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(folder: Path) -> str:
    """SHA-256 of a directory's relative file paths and sizes (cheap: no file is read)."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(f"{path.relative_to(folder).as_posix()}\0{path.stat().st_size}\n".encode())
    return h.hexdigest()


def source_digest(path: Path) -> str:
    """The cache key of a source: `file_digest` for a file, `tree_digest` for a directory."""
    return tree_digest(path) if path.is_dir() else file_digest(path)


def entry_dir(dataset: str, digest: str) -> Path:
    return cache_root() / "decoded" / f"{dataset}-{digest[:24]}"


def load_cached(dataset: str, digest: str, split: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached (images, labels) of one split, or None when absent or unreadable."""
    folder = entry_dir(dataset, digest)
    try:
        images = np.load(folder / f"{split}-images.npy", allow_pickle=False)
        labels = np.load(folder / f"{split}-labels.npy", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if len(images) != len(labels):
        return None
    return images, labels


def save_cached(dataset: str, digest: str, split: str, images: np.ndarray,
                labels: np.ndarray) -> None:
    """Write one split's arrays into the cache entry, each file atomically."""
    folder = entry_dir(dataset, digest)
    for name, array in ((f"{split}-images.npy", images), (f"{split}-labels.npy", labels)):
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
        atomic_write_bytes(folder / name, buf.getvalue())


def cached_split(dataset: str, source: Path, split: str, decode: Callable[[], Splits]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """One split of `source`, from the cache, or by `decode()` (all splits), then cached.

    Args:
        dataset: the dataset name (part of the cache key).
        source: the archive file or directory the arrays are decoded from.
        decode: returns {split: (images, labels)} for every split of the source.
    """
    digest = source_digest(source)
    cached = load_cached(dataset, digest, split)
    if cached is not None:
        return cached
    splits = decode()
    try:
        for name, (images, labels) in splits.items():
            save_cached(dataset, digest, name, images, labels)
    except OSError as exc:
        # The arrays are already decoded: an unwritable cache only makes the next load slower.
        print(f"dlab: warning: cannot write the decoded-data cache "
              f"{str(entry_dir(dataset, digest))!r} ({exc.strerror or exc}); "
              f"{dataset} will be decoded again next time", file=sys.stderr)
    return splits[split]
