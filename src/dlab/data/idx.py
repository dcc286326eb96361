"""Read MNIST-style IDX files (raw or .gz) into numpy arrays, verifying known checksums.

Images come back as uint8 (N, 1, H, W), labels as int64 (N,). `IdxFormat` is the "idx" format
of `dlab.data.formats`: per split an images and a labels file named in the spec, downloaded as
`<stem>.gz` and verified by the SHA-256 of the uncompressed content (the gzip wrapper differs
between mirrors). Must not import torch.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

from dlab.data.download import fetch_file
from dlab.data.sources import DatasetSpec
from dlab.errors import DlabError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_bytes(path: Path) -> bytes:
    """The uncompressed content of `path` (gzip if it ends in .gz); corrupt files are errors."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (EOFError, OSError, zlib.error) as exc:
        raise DlabError(f"data file {str(path)!r} is truncated or corrupt ({exc}); "
                        "delete it and fetch it again") from None


def parse_idx(raw: bytes, source: str) -> np.ndarray:
    """Parse the IDX bytes; a bad header or a short body is an error naming `source`."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DlabError(f"data file {source!r} is not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DlabError(f"data file {source!r} is truncated (short IDX header)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = header + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        raise DlabError(f"data file {source!r} is truncated or corrupt: {len(raw)} bytes, "
                        f"expected {expected} for shape {dims}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def find_idx_file(folder: Path, stem: str) -> Path | None:
    """`folder/stem.gz` or `folder/stem` (also the `stem.idx3-ubyte`-style dotted variants)."""
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz",
                 stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def load_idx(path: Path, sha256: str | None) -> np.ndarray:
    """Read and parse one IDX file, checking its uncompressed SHA-256 when one is known."""
    raw = read_bytes(path)
    if sha256 is not None:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != sha256:
            raise DlabError(f"data file {str(path)!r} has the wrong checksum: sha256 {digest[:16]}…, "
                            f"expected {sha256[:16]}…; delete it and fetch it again")
    return parse_idx(raw, str(path))


def load_idx_split(folder: Path, stems: tuple[str, str], sha256: dict[str, str]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Load one split's (images uint8 (N, 1, H, W), labels int64 (N,)) from `folder`."""
    arrays = []
    for stem in stems:
        path = find_idx_file(folder, stem)
        if path is None:
            raise DlabError(f"data file {stem}(.gz) not found in {str(folder)!r}")
        arrays.append(load_idx(path, sha256.get(stem)))
    images, labels = arrays
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DlabError(f"IDX files in {str(folder)!r} disagree: images {images.shape}, "
                        f"labels {labels.shape}")
    return np.ascontiguousarray(images[:, None, :, :], dtype=np.uint8), labels.astype(np.int64)


def _stems(spec: DatasetSpec) -> list[str]:
    return [stem for pair in spec.files.values() for stem in pair]


class IdxFormat:
    """The "idx" format: `spec.files` names each split's images and labels IDX files."""

    def present(self, folder: Path, spec: DatasetSpec) -> bool:
        return folder.is_dir() and all(find_idx_file(folder, s) for s in _stems(spec))

    def refuse_incomplete(self, folder: Path, spec: DatasetSpec) -> None:
        """A folder with some but not all IDX files is an error naming the missing one: silently
        skipping it (or downloading over it) would hide a broken copy."""
        if not folder.is_dir():
            return
        stems = _stems(spec)
        missing = [stem for stem in stems if find_idx_file(folder, stem) is None]
        if missing and len(missing) < len(stems):
            raise DlabError(f"dataset {spec.name!r} in {str(folder)!r} is incomplete: "
                            f"{missing[0]}(.gz) is missing")

    def files(self, folder: Path, spec: DatasetSpec) -> list[Path]:
        return [find_idx_file(folder, stem) for stem in _stems(spec)]

    def load(self, folder: Path, spec: DatasetSpec, split: str) -> tuple[np.ndarray, np.ndarray]:
        return load_idx_split(folder, spec.files[split], spec.sha256)

    def download(self, spec: DatasetSpec, dest: Path, timeout_s: float) -> None:
        """Fetch each missing `<stem>.gz`; the mirror that answered goes first for the rest."""
        urls = list(spec.urls)
        for stem in _stems(spec):
            if find_idx_file(dest, stem) is None:
                used = fetch_file(spec, urls, f"{stem}.gz", dest, spec.sha256[stem], timeout_s,
                                  gunzip=True)
                urls.remove(used)
                urls.insert(0, used)
