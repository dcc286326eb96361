"""CIFAR-10 layouts (binary, python, image folders), the restricted unpickler, the cache, errors.

Small sources are built from a slice of the shared JPEG archive (3 images per class and split),
so every layout is checked against the same real pixels. Decoding the whole archive (about
10-35 s on shared cores) is the one slow test; the default suite checks the archive's full
member listing instead.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from dlab.data import cache, cifar, load_dataset
from dlab.data.cifar import find_cifar_source, load_cifar10
from dlab.data.sources import CIFAR10_CLASSES
from dlab.errors import DlabError
from dlab.paths import cache_root

PER_CLASS = 3


@pytest.fixture(scope="module")
def shared_archive(data_dir) -> tuple[dict[str, bytes], dict[tuple[str, str], int]]:
    """One pass over the shared archive: the first PER_CLASS images of each class and split
    ({"train/cat/0000.jpg": bytes}), and the image count per (split, class)."""
    out, count = {}, {}
    with tarfile.open(data_dir / "cifar10" / "cifar10-jpeg.tar.gz", "r|gz") as tf:
        for member in tf:
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 3:
                key = (parts[0], parts[1])
                count[key] = count.get(key, 0) + 1
                if count[key] <= PER_CLASS:
                    out[member.name] = tf.extractfile(member).read()
    return out, count


@pytest.fixture
def jpeg_slice(shared_archive) -> dict[str, bytes]:
    return shared_archive[0]


def test_shared_archive_holds_the_cifar10_layout(shared_archive):
    images, count = shared_archive
    assert len(images) == 2 * 10 * PER_CLASS
    assert count == {**{("train", c): 5000 for c in CIFAR10_CLASSES},
                     **{("test", c): 1000 for c in CIFAR10_CLASSES}}


def write_tar(path: Path, files: dict[str, bytes], prefix: str = "") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def write_dir(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.fixture
def folder_arrays(jpeg_slice, tmp_path):
    """The slice decoded through the image-folder path: {split: (images, labels)}."""
    src = write_dir(tmp_path / "cifar10", jpeg_slice)
    return {s: load_cifar10(src, s) for s in ("train", "test")}


def batches(arrays, stems_per_split):
    """Split decoded arrays into the official batch files' contents."""
    for split, stems in stems_per_split.items():
        images, labels = arrays[split]
        for stem, idx in zip(stems, np.array_split(np.arange(len(labels)), len(stems))):
            yield stem, images[idx], labels[idx]


OFFICIAL = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def binary_files(arrays) -> dict[str, bytes]:
    out = {}
    for stem, images, labels in batches(arrays, OFFICIAL):
        pixels = images.reshape(len(images), -1)
        records = np.concatenate([labels.astype(np.uint8)[:, None], pixels], 1)
        out[f"cifar-10-batches-bin/{stem}.bin"] = records.tobytes()
    return out


def python_files(arrays) -> dict[str, bytes]:
    out = {}
    for stem, images, labels in batches(arrays, OFFICIAL):
        batch = {b"batch_label": stem.encode(), b"labels": labels.tolist(),
                 b"data": images.reshape(len(images), -1), b"filenames": [b"x.png"] * len(labels)}
        out[f"cifar-10-batches-py/{stem}"] = pickle.dumps(batch, protocol=4)
    return out


def _py2_str(b: bytes) -> bytes:
    """A Python 2 str in pickle opcodes (SHORT_BINSTRING / BINSTRING)."""
    return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b


def py2_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch pickled the way the official files are (Python 2 cPickle, protocol 2): opcodes
    written out by hand, since Python 3 pickles bytes differently."""
    n, width = data.shape
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + _py2_str(b"b")
             + b"\x87R(K\x01J" + struct.pack("<i", n) + b"J" + struct.pack("<i", width) + b"\x86"
             + b"cnumpy\ndtype\n" + _py2_str(b"u1") + b"K\x00K\x01\x87R(K\x03" + _py2_str(b"|")
             + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89" + _py2_str(data.tobytes())
             + b"tb")
    items = b"".join(b"K" + bytes([label]) for label in labels)
    return (b"\x80\x02}(" + _py2_str(b"data") + array + _py2_str(b"labels") + b"](" + items
            + b"eu.")


def python2_files(arrays) -> dict[str, bytes]:
    return {f"cifar-10-batches-py/{stem}": py2_batch(images.reshape(len(images), -1),
                                                      labels.tolist())
            for stem, images, labels in batches(arrays, OFFICIAL)}


def assert_same(a, b):
    for split in ("train", "test"):
        np.testing.assert_array_equal(a[split][0], b[split][0])
        np.testing.assert_array_equal(a[split][1], b[split][1])


def test_image_folders_shapes_order_and_labels(folder_arrays):
    images, labels = folder_arrays["train"]
    assert images.shape == (10 * PER_CLASS, 3, 32, 32) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, np.repeat(np.arange(10), PER_CLASS))
    assert images.std() > 10  # real pixels, not zeros


@pytest.mark.parametrize("kind", ["tar.gz", "zip", "prefixed-tar"])
def test_image_folder_archives_match_directory(kind, jpeg_slice, folder_arrays, tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    if kind == "zip":
        with zipfile.ZipFile(folder / "cifar10-jpeg.zip", "w") as zf:
            for name, data in jpeg_slice.items():
                zf.writestr(name, data)
    else:
        write_tar(folder / "cifar10-jpeg.tar.gz", jpeg_slice,
                  "cifar10/" if kind == "prefixed-tar" else "")
    assert find_cifar_source(folder).kind == "folders"
    assert_same({s: load_cifar10(folder, s) for s in ("train", "test")}, folder_arrays)


@pytest.mark.parametrize("fmt", ["ustar-tar", "pax-long-names"])
def test_fast_tar_reader_and_its_tarfile_fallback(fmt, jpeg_slice, folder_arrays, tmp_path):
    from dlab.data.imagefolder import _plain_tar_members

    folder = tmp_path / "tars" / "cifar10"
    folder.mkdir(parents=True)
    if fmt == "ustar-tar":
        path = folder / "images.tar"
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tf:
            for name, data in jpeg_slice.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        assert len(_plain_tar_members(path)) == len(jpeg_slice)  # the fast path read it
    else:  # names past ustar's 255 characters need pax headers, which tarfile reads
        path = write_tar(folder / "images.tar.gz", jpeg_slice, "d" * 300 + "/")
        assert _plain_tar_members(path) is None
    assert_same({s: load_cifar10(folder, s) for s in ("train", "test")}, folder_arrays)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DlabError, match=r"images\.tar.*truncated or corrupt"):
        load_cifar10(folder, "train")  # a new checksum, so no stale cache hit either


@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("layout", ["binary", "python", "python2"])
def test_official_layouts_match_image_folders(layout, packed, folder_arrays, tmp_path):
    files = {"binary": binary_files, "python": python_files,
             "python2": python2_files}[layout](folder_arrays)
    root = tmp_path / "root"
    root.mkdir()
    if packed:
        name = "cifar-10-binary.tar.gz" if layout == "binary" else "cifar-10-python.tar.gz"
        write_tar(root / name, files)
    else:
        write_dir(root, files)
    source = find_cifar_source(root)
    assert source.kind == layout.rstrip("2") and source.path.is_dir() != packed
    assert_same({s: load_cifar10(root, s) for s in ("train", "test")}, folder_arrays)


def test_restricted_unpickler_refuses_other_globals(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    batch_dir = tmp_path / "cifar-10-batches-py"
    batch_dir.mkdir()
    for stem in OFFICIAL["train"] + OFFICIAL["test"]:
        (batch_dir / stem).write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(DlabError, match=r"data_batch_1.*not allowed"):
        load_cifar10(tmp_path, "train")
    assert not marker.exists()


def test_restricted_unpickler_allows_arrays_and_containers():
    value = {b"a": [1, (2.5, "x")], "b": np.arange(6, dtype=np.uint8).reshape(2, 3)}
    out = cifar.restricted_loads(pickle.dumps(value, protocol=4), "f")
    assert out[b"a"] == [1, (2.5, "x")]
    np.testing.assert_array_equal(out["b"], value["b"])


def test_truncated_archives_are_one_line_errors(jpeg_slice, folder_arrays, tmp_path):
    full = write_tar(tmp_path / "full.tar.gz", binary_files(folder_arrays))
    root = tmp_path / "root"
    root.mkdir()
    raw = full.read_bytes()
    (root / "cifar-10-binary.tar.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DlabError, match=r"cifar-10-binary\.tar\.gz.*truncated or corrupt"):
        load_cifar10(root, "train")
    other = tmp_path / "other" / "cifar10"
    other.mkdir(parents=True)
    raw = write_tar(tmp_path / "j.tar.gz", jpeg_slice).read_bytes()
    (other / "cifar10-jpeg.tar.gz").write_bytes(raw[: len(raw) * 2 // 3])
    with pytest.raises(DlabError, match=r"cifar10-jpeg\.tar\.gz.*truncated or corrupt") as info:
        load_cifar10(other, "test")
    assert "\n" not in str(info.value)
    zipped = tmp_path / "z" / "cifar10"
    zipped.mkdir(parents=True)
    with zipfile.ZipFile(zipped / "cifar10.zip", "w") as zf:
        for name, data in jpeg_slice.items():
            zf.writestr(name, data)
    raw = (zipped / "cifar10.zip").read_bytes()
    (zipped / "cifar10.zip").write_bytes(raw[: len(raw) - 200])  # the central directory is cut
    with pytest.raises(DlabError, match=r"cifar10\.zip.*truncated or corrupt"):
        load_cifar10(zipped, "train")


def test_truncated_binary_batch_names_the_file(folder_arrays, tmp_path):
    files = binary_files(folder_arrays)
    name = "cifar-10-batches-bin/data_batch_3.bin"
    files[name] = files[name][:-7]
    write_dir(tmp_path, files)
    with pytest.raises(DlabError, match=r"data_batch_3.*truncated"):
        load_cifar10(tmp_path, "train")


def test_wrong_image_size_and_unknown_class(jpeg_slice, tmp_path):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, format="PNG")
    bad = dict(jpeg_slice, **{"train/cat/9999.png": buf.getvalue()})
    write_dir(tmp_path / "a" / "cifar10", bad)
    with pytest.raises(DlabError, match=r"train/cat/9999\.png is 16x16; expected 32x32"):
        load_cifar10(tmp_path / "a" / "cifar10", "train")
    unknown = dict(jpeg_slice, **{"test/unicorn/0000.jpg": jpeg_slice["test/cat/0000.jpg"]})
    write_tar(tmp_path / "cifar10-u.tar.gz", unknown)
    with pytest.raises(DlabError, match=r"cifar10-u\.tar\.gz.*unknown class folder 'unicorn'"):
        load_cifar10(tmp_path, "train")


def test_corrupt_image_names_the_file(jpeg_slice, tmp_path):
    bad = dict(jpeg_slice, **{"test/dog/0000.jpg": b"not a jpeg at all"})
    write_dir(tmp_path / "cifar10", bad)
    with pytest.raises(DlabError, match=r"test/dog/0000\.jpg cannot be decoded"):
        load_cifar10(tmp_path / "cifar10", "test")


def test_find_source_ignores_unrelated_folders(data_dir, tmp_path):
    assert find_cifar_source(data_dir / "mnist") is None
    assert find_cifar_source(tmp_path / "missing") is None
    (tmp_path / "photos.zip").write_bytes(b"")  # an unrelated archive in a data root
    assert find_cifar_source(tmp_path) is None
    assert find_cifar_source(data_dir / "cifar10").path.name == "cifar10-jpeg.tar.gz"


def test_second_load_comes_from_the_cache(jpeg_slice, tmp_path, monkeypatch):
    src = write_tar(tmp_path / "cifar10-jpeg.tar.gz", jpeg_slice)
    first = load_cifar10(tmp_path, "train")
    entry = cache.entry_dir("cifar10", cache.file_digest(src))
    assert entry.parent == cache_root() / "decoded"
    assert sorted(p.name for p in entry.iterdir()) == [
        "test-images.npy", "test-labels.npy", "train-images.npy", "train-labels.npy"]

    def no_decode(*args):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(cifar, "decode_source", no_decode)
    second = load_cifar10(tmp_path, "train")
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    # A changed source has a new checksum, so it is decoded afresh rather than served stale.
    write_tar(src, {k: v for k, v in jpeg_slice.items() if not k.startswith("train/cat/")})
    with pytest.raises(AssertionError, match="decoded again"):
        load_cifar10(tmp_path, "train")


@pytest.mark.slow
def test_full_shared_archive_and_cached_reload(data_dir):
    start = time.perf_counter()
    train = load_dataset("cifar10", "train", data_dir)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    test = load_dataset("cifar10", "test", data_dir)
    train_again = load_dataset("cifar10", "train", data_dir)
    cached_s = time.perf_counter() - start
    assert train.images.shape == (50000, 3, 32, 32) and test.images.shape == (10000, 3, 32, 32)
    assert np.bincount(train.labels).tolist() == [5000] * 10
    assert np.bincount(test.labels).tolist() == [1000] * 10
    assert train.classes == CIFAR10_CLASSES
    np.testing.assert_array_equal(train.images[:100], train_again.images[:100])
    assert cached_s < first_s / 5, (first_s, cached_s)


def _without(files: dict[str, bytes], folder: str) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if not k.startswith(folder)}


@pytest.mark.parametrize("container", ["dir", "tar.gz", "zip"])
@pytest.mark.parametrize("empty", ["train/dog/", "test/dog/"])
def test_empty_class_folder_is_an_error_naming_it(container, empty, jpeg_slice, tmp_path):
    """e_emptyclass: a 10-class dataset with one class folder empty was accepted silently."""
    files = _without(jpeg_slice, empty)
    root = tmp_path / "cifar10"
    root.mkdir()
    if container == "dir":
        write_dir(root, files)
        (root / empty).mkdir()
    elif container == "tar.gz":
        with tarfile.open(root / "cifar10-e.tar.gz", "w:gz") as tf:
            info = tarfile.TarInfo(empty.rstrip("/"))
            info.type = tarfile.DIRTYPE
            tf.addfile(info)
            for name, data in files.items():
                member = tarfile.TarInfo(name)
                member.size = len(data)
                tf.addfile(member, io.BytesIO(data))
    else:
        with zipfile.ZipFile(root / "cifar10-e.zip", "w") as zf:
            zf.writestr(empty, b"")
            for name, data in files.items():
                zf.writestr(name, data)
    with pytest.raises(DlabError, match=f"class folder {empty} holds no images") as info:
        load_dataset("cifar10", "train", tmp_path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["../../w/train/cat/evil.jpg", "/abs/train/cat/evil.jpg",
                                  "/train/cat/evil.jpg",
                                  "train/cat/../../../x/train/cat/evil.jpg"])
def test_members_outside_the_dataset_are_not_images_of_it(name, jpeg_slice, tmp_path):
    """e_trav: `../../..$W/train/cat/evil3.png` was counted as a training image."""
    files = dict(jpeg_slice, **{name: jpeg_slice["train/cat/0000.jpg"]})
    write_tar(tmp_path / "cifar10-t.tar.gz", files)
    images, labels = load_cifar10(tmp_path, "train")
    assert np.bincount(labels).tolist() == [PER_CLASS] * 10
    (tmp_path / "nested").mkdir()
    nested = {f"a/b/{k}": v for k, v in jpeg_slice.items()}  # leading folders are fine
    write_tar(tmp_path / "nested" / "cifar10-n.tar.gz", nested)
    assert len(load_cifar10(tmp_path / "nested", "train")[1]) == 10 * PER_CLASS


def test_unwritable_cache_warns_and_still_loads(jpeg_slice, tmp_path, capsys):
    write_tar(tmp_path / "cifar10-jpeg.tar.gz", jpeg_slice)
    (cache_root()).mkdir(parents=True)
    (cache_root() / "decoded").write_bytes(b"")  # a file where the cache folder should be
    images, labels = load_cifar10(tmp_path, "train")
    assert images.shape == (10 * PER_CLASS, 3, 32, 32)
    err = capsys.readouterr().err
    assert "cannot write the decoded-data cache" in err and err.count("\n") == 1
