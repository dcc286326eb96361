"""The decoded-array cache: `.npy` files under the user cache dir, keyed by the source's checksum.

Decoding CIFAR-10 (60k JPEGs, or a 170 MB tarball) takes seconds; reading the decoded arrays
back takes a fraction of one. A cache entry is the folder
`<user cache>/decoded/<dataset>-<digest[:24]>/` holding `<split>-images.npy` and
`<split>-labels.npy`. The key is the SHA-256 of the archive file, or, for a plain directory, of
its file list with sizes, so an edited source never serves stale arrays. Each file is written
atomically, so a crash leaves either no entry or a whole one; an unreadable entry is a miss.
Must not import torch.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from dlab.data.store import user_cache_dir
from dlab.runs import atomic_write_bytes

_CHUNK = 1 << 20


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
    return user_cache_dir() / "decoded" / f"{dataset}-{digest[:24]}"


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
