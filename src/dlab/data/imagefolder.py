"""Image-folder datasets: `train/<class>/*.jpg|png` and `test/<class>/...` in a .tar.gz, a .zip
or a plain directory (the shared copy of CIFAR-10 is such a .tar.gz).

Members may sit under one leading folder (`cifar10/train/cat/0001.jpg`); hidden files
(`.DS_Store`, `._x.jpg`) are skipped. Labels are the index of the class folder in the given
class list; within a class, images are sorted by file name, so the order is reproducible.
Images are decoded with Pillow into uint8 (N, H, W, C) arrays. Every problem (corrupt archive,
unknown class folder, undecodable image, wrong image size) is a one-line DlabError naming the
file. Must not import torch.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Iterator

import numpy as np

from dlab.errors import DlabError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
SPLIT_NAMES = ("train", "test")


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _iter_members(path: Path) -> Iterator[tuple[str, bytes]]:
    """(member name, bytes) of every regular file in the archive or directory `path`."""
    if path.is_dir():
        for split in SPLIT_NAMES:
            for file in sorted((path / split).rglob("*")):
                if file.is_file():
                    yield file.relative_to(path).as_posix(), file.read_bytes()
    elif path.name.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield info.filename, zf.read(info)
    else:
        members = _plain_tar_members(path)
        if members is not None:
            yield from members
            return
        # Streaming mode ("r|*") reads a .tar.gz once, front to back, without seeking.
        with tarfile.open(path, "r|*") as tf:
            for member in tf:
                if member.isfile():
                    fh = tf.extractfile(member)
                    yield member.name, fh.read() if fh else b""


def _plain_tar_members(path: Path) -> list[tuple[str, bytes]] | None:
    """The regular files of a plain ustar archive (optionally gzipped), or None for anything
    else (pax or GNU extensions, links, bad header checksums, truncation): `tarfile` reads those.

    tarfile spends ~100 us of Python per member; 60k small images took 2.6-7 s that way and
    take 0.7 s here (one gunzip, then slicing 512-byte headers).
    """
    opener = gzip.open if path.name.lower().endswith((".gz", ".tgz")) else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    out, pos = [], 0
    while pos + 512 <= len(raw):
        if raw[pos] == 0:  # the end-of-archive block
            return out
        header = raw[pos:pos + 512]
        try:
            checksum = int(header[148:156].rstrip(b"\0 ") or b"-1", 8)
            size = int(header[124:136].rstrip(b"\0 ") or b"0", 8)
        except ValueError:
            return None
        kind = header[156:157]
        if checksum != sum(header[:148]) + 256 + sum(header[156:]) or kind not in b"05\0" \
                or pos + 512 + size > len(raw):
            return None
        if kind != b"5":
            name = header[:100].rstrip(b"\0").decode("utf-8", "replace")
            prefix = header[345:500].rstrip(b"\0").decode("utf-8", "replace")
            out.append((f"{prefix}/{name}" if prefix else name, raw[pos + 512:pos + 512 + size]))
        pos += 512 + (size + 511) // 512 * 512
    return None  # no end-of-archive block: let tarfile judge the truncation


def _classify(name: str, classes: tuple[str, ...], source: Path) -> tuple[str, int] | None:
    """(split, label) for an image member, None for members outside train/ and test/."""
    parts = PurePosixPath(name).parts
    if len(parts) < 3 or parts[-3] not in SPLIT_NAMES or parts[-1].startswith("."):
        return None
    split, cls, fname = parts[-3:]
    if cls not in classes:
        raise DlabError(f"{str(source)!r}: unknown class folder {cls!r} (in {name}); expected "
                        "one of: " + ", ".join(classes))
    if not fname.lower().endswith(IMAGE_SUFFIXES):
        raise DlabError(f"{str(source)!r}: {name} is not an image; expected "
                        + "/".join(IMAGE_SUFFIXES) + " files in class folders")
    return split, classes.index(cls)


def read_members(source: Path, classes: tuple[str, ...]
                 ) -> dict[str, list[tuple[int, str, bytes]]]:
    """Per split, the (label, member name, encoded bytes) of each image, in dataset order."""
    found: dict[str, list[tuple[int, str, bytes]]] = {s: [] for s in SPLIT_NAMES}
    try:
        for name, data in _iter_members(source):
            where = _classify(name, classes, source)
            if where is not None:
                found[where[0]].append((where[1], PurePosixPath(name).name, data))
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise DlabError(f"archive {str(source)!r} is truncated or corrupt ({exc}); "
                        "delete it and fetch it again") from None
    for split, items in found.items():
        if not items:
            raise DlabError(f"{str(source)!r} holds no {split}/<class>/ images; expected "
                            "train/<class>/*.jpg|png and test/<class>/*.jpg|png")
        items.sort(key=lambda item: (item[0], item[1]))
    return found


def decode_images(blobs: list[bytes], names: list[str], shape: tuple[int, int, int],
                  source: str) -> np.ndarray:
    """Decode encoded images of the given (H, W, C) shape into uint8 (N, H, W, C).

    One process: on 2 busy cores a pool of 2 decoded the 60k CIFAR-10 JPEGs no faster
    (11-14 s either way), and the result is cached after the first decode anyway.
    """
    from PIL import Image, UnidentifiedImageError

    height, width, channels = shape
    mode = {1: "L", 3: "RGB"}[channels]
    out = np.empty((len(blobs), height, width, channels), dtype=np.uint8)
    for i, (blob, name) in enumerate(zip(blobs, names)):
        try:
            with Image.open(io.BytesIO(blob)) as im:
                if im.size != (width, height):
                    raise DlabError(f"{source!r}: image {name} is {im.size[0]}x{im.size[1]}; "
                                    f"expected {width}x{height}")
                pixels = np.asarray(im if im.mode == mode else im.convert(mode))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise DlabError(f"{source!r}: image {name} cannot be decoded ({exc})") from None
        out[i] = pixels.reshape(height, width, channels)
    return out


def load_image_folders(source: Path, classes: tuple[str, ...], shape: tuple[int, int, int]
                       ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Both splits of an image-folder source as {split: (images uint8 (N, C, H, W), labels)}.

    Args:
        shape: the expected (C, H, W) of every image.
    """
    members = read_members(source, classes)
    sizes = {split: len(items) for split, items in members.items()}
    blobs = [blob for items in members.values() for _, _, blob in items]
    names = [f"{split}/{classes[label]}/{name}" for split, items in members.items()
             for label, name, _ in items]
    channels, height, width = shape
    pixels = decode_images(blobs, names, (height, width, channels), str(source))
    out, start = {}, 0
    for split, items in members.items():
        stop = start + sizes[split]
        images = np.ascontiguousarray(pixels[start:stop].transpose(0, 3, 1, 2))
        labels = np.array([label for label, _, _ in items], dtype=np.int64)
        out[split], start = (images, labels), stop
    return out
