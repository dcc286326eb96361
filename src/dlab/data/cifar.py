"""CIFAR-10 from any of its layouts, decoded once and then served from the `.npy` cache.

Layouts, in the order `find_cifar_source` looks for them in a folder:
- the official binary layout: `cifar-10-batches-bin/` (data_batch_1..5.bin, test_batch.bin;
  each record is 1 label byte + 3072 pixel bytes, channel-major) or `cifar-10-binary.tar.gz`;
- the official python layout: `cifar-10-batches-py/` (data_batch_1..5, test_batch: pickled dicts
  with b"data" uint8 (N, 3072) and b"labels") or `cifar-10-python.tar.gz`, unpickled only
  through `RestrictedUnpickler` (plain containers and numpy arrays, nothing else);
- image folders `train/<class>/*.jpg|png`, `test/<class>/...` as a directory, or as a
  .tar.gz/.tgz/.tar/.zip archive (see `dlab.data.imagefolder`).
Images come back as uint8 (N, 3, 32, 32), labels as int64 (N,) in 0..9, classes in the order
of the dataset's spec (the official one, `sources.CIFAR10_CLASSES`). `CifarFormat` is the
"cifar10" format of `dlab.data.formats`; it downloads the spec's first archive (the official
binary tarball). Must not import torch.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlab.data import cache
from dlab.data.download import fetch_file
from dlab.data.imagefolder import find_image_folder_source, load_image_folders
from dlab.data.sources import DATASETS, DatasetSpec
from dlab.errors import DlabError

SHAPE = (3, 32, 32)
_RECORD = 1 + 3 * 32 * 32
_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
_LAYOUTS = {  # kind: (directory, official archive, batch-file suffix)
    "binary": ("cifar-10-batches-bin", "cifar-10-binary.tar.gz", ".bin"),
    "python": ("cifar-10-batches-py", "cifar-10-python.tar.gz", ""),
}


@dataclass(frozen=True)
class CifarSource:
    """Where CIFAR-10 was found: `kind` is "binary", "python" or "folders"; `path` is the
    layout's directory or archive file."""

    kind: str
    path: Path


def find_cifar_source(folder: Path) -> CifarSource | None:
    """The first CIFAR-10 layout present in `folder`, or None.

    Only names are checked (no archive is opened), so this is cheap enough for the lookup
    order to call on every root. An image-folder archive must have "cifar" in its name unless
    the folder itself does (`<root>/cifar10/anything.zip`), so unrelated archives in a data root
    are not mistaken for CIFAR-10.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    for kind, (dirname, archive, suffix) in _LAYOUTS.items():
        if (folder / dirname / f"data_batch_1{suffix}").is_file():
            return CifarSource(kind, folder / dirname)
        if (folder / archive).is_file():
            return CifarSource(kind, folder / archive)
    archives = tuple(archive for _, archive, _ in _LAYOUTS.values())
    path = find_image_folder_source(folder, "cifar", exclude=archives)
    return CifarSource("folders", path) if path is not None else None


def load_cifar(folder: Path, spec: DatasetSpec, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split of a CIFAR-10-format dataset in `folder`: (images uint8 (N, C, H, W), labels).

    The first call decodes the source (both splits) and caches the arrays keyed by the
    source's checksum; later calls read the cache.
    """
    if split not in _BATCHES:
        raise DlabError(f"unknown split {split!r}; expected 'train' or 'test'")
    source = find_cifar_source(Path(folder))
    if source is None:
        raise DlabError(f"no CIFAR-10 found in {str(folder)!r}; expected cifar-10-batches-bin/, "
                        "cifar-10-batches-py/, their official .tar.gz, or train/ and test/ "
                        "image folders (as a directory, .tar.gz or .zip)")
    return cache.cached_split(spec.name, source.path, split, lambda: decode_source(source, spec))


def load_cifar10(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """`load_cifar` for the registered cifar10 entry."""
    return load_cifar(folder, DATASETS["cifar10"], split)


def decode_source(source: CifarSource, spec: DatasetSpec
                  ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Both splits of `source`, decoded (no cache)."""
    if source.kind == "folders":
        return load_image_folders(source.path, spec.classes, spec.shape)
    files = _read_batch_files(source)
    parse = _parse_binary if source.kind == "binary" else _parse_pickle
    out = {}
    for split, stems in _BATCHES.items():
        parts = [parse(files[stem], f"{source.path}/{stem}") for stem in stems]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        if labels.size and (labels.min() < 0 or labels.max() >= len(spec.classes)):
            raise DlabError(f"{str(source.path)!r}: {split} labels outside "
                            f"0..{len(spec.classes) - 1}")
        out[split] = (images, labels)
    return out


def _read_batch_files(source: CifarSource) -> dict[str, bytes]:
    """The raw bytes of the six batch files, from the layout's directory or its tarball."""
    suffix = _LAYOUTS[source.kind][2]
    wanted = {f"{stem}{suffix}": stem for stems in _BATCHES.values() for stem in stems}
    files: dict[str, bytes] = {}
    if source.path.is_dir():
        for name, stem in wanted.items():
            if not (source.path / name).is_file():
                raise DlabError(f"CIFAR-10 file {str(source.path / name)!r} not found")
            files[stem] = (source.path / name).read_bytes()
        return files
    try:
        with tarfile.open(source.path, "r|*") as tf:
            for member in tf:
                name = Path(member.name).name
                if member.isfile() and name in wanted:
                    files[wanted[name]] = tf.extractfile(member).read()
    except (tarfile.TarError, zlib.error, EOFError, OSError) as exc:
        raise DlabError(f"archive {str(source.path)!r} is truncated or corrupt ({exc}); "
                        "delete it and fetch it again") from None
    missing = sorted(n for n, stem in wanted.items() if stem not in files)
    if missing:
        raise DlabError(f"archive {str(source.path)!r} lacks {', '.join(missing)}")
    return files


def _parse_binary(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    if not raw or len(raw) % _RECORD:
        raise DlabError(f"CIFAR-10 file {name!r} is truncated or corrupt: {len(raw)} bytes is "
                        f"not a multiple of the {_RECORD}-byte record")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _RECORD)
    return records[:, 1:].reshape(-1, *SHAPE).copy(), records[:, 0].astype(np.int64)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays; any other global is refused.

    A pickle can call any importable function while loading; the official CIFAR-10 batches
    need only numpy's array reconstruction, so that is all this allows.
    """

    ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    })

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return super().find_class(module, name)


def restricted_loads(raw: bytes, name: str):
    """Unpickle `raw` (a CIFAR-10 python batch) with `RestrictedUnpickler`."""
    try:
        # encoding="bytes": the official batches were pickled by Python 2 (keys are bytes).
        return RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - a hostile or damaged pickle can raise anything
        raise DlabError(f"CIFAR-10 file {name!r} is not a plain CIFAR-10 batch ({exc})") from None


def _parse_pickle(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    batch = restricted_loads(raw, name)
    if not isinstance(batch, dict):
        raise DlabError(f"CIFAR-10 file {name!r} holds {type(batch).__name__}; expected a dict")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if not isinstance(data, np.ndarray) or labels is None:
        raise DlabError(f"CIFAR-10 file {name!r} lacks 'data' (array) or 'labels'")
    try:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise DlabError(f"CIFAR-10 file {name!r}: 'labels' is not a list of integers") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 \
            or len(data) != len(labels):
        raise DlabError(f"CIFAR-10 file {name!r}: data {data.dtype} {data.shape}, labels "
                        f"{labels.shape}; expected uint8 (N, 3072) and (N,)")
    return data.reshape(-1, *SHAPE).copy(), labels


class CifarFormat:
    """The "cifar10" format: the official binary or python batches, or image folders."""

    def present(self, folder: Path, spec: DatasetSpec) -> bool:
        return find_cifar_source(folder) is not None

    def refuse_incomplete(self, folder: Path, spec: DatasetSpec) -> None:
        """A layout is found by name only; a broken one is an error when it is read."""

    def files(self, folder: Path, spec: DatasetSpec) -> list[Path]:
        path = find_cifar_source(folder).path
        return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]

    def load(self, folder: Path, spec: DatasetSpec, split: str) -> tuple[np.ndarray, np.ndarray]:
        return load_cifar(folder, spec, split)

    def download(self, spec: DatasetSpec, dest: Path, timeout_s: float) -> None:
        """Fetch the first of `spec.archives` (the official binary tarball) unless it is there."""
        name, digest = next(iter(spec.archives.items()))
        if not (dest / name).is_file():
            fetch_file(spec, spec.urls, name, dest, digest, timeout_s)
