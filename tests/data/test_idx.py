"""IDX loading (MNIST, Fashion-MNIST), checksums, corrupt files, lookup order and splits."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from dlab.config import DataConfig
from dlab.data import get_spec, holdout_split, load_dataset, load_splits
from dlab.data.store import locate, user_data_dir
from dlab.errors import DlabError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def copy_dataset(data_dir: Path, name: str, root: Path) -> Path:
    """Link the real files into root/name (cheap); `rewrite` replaces a link by a real file."""
    (root / name).mkdir(parents=True)
    for path in (data_dir / name).iterdir():
        (root / name / path.name).symlink_to(path)
    return root / name


def rewrite(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def test_real_mnist_shapes_and_class_counts(data_dir):
    train = load_dataset("mnist", "train", data_dir)
    test = load_dataset("mnist", "test", data_dir)
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 1, 28, 28) and test.labels.dtype == np.int64
    assert np.bincount(train.labels).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(test.labels).tolist() == MNIST_TEST_COUNTS
    assert train.images.max() == 255


def test_real_fashion_mnist_class_counts(data_dir):
    train = load_dataset("fashion-mnist", "train", data_dir)
    test = load_dataset("fashion-mnist", "test", data_dir)
    assert train.images.shape == (60000, 1, 28, 28)
    assert np.bincount(train.labels).tolist() == [6000] * 10
    assert np.bincount(test.labels).tolist() == [1000] * 10
    assert train.classes[0] == "T-shirt/top" and len(train.classes) == 10


def test_checksum_mismatch_is_an_error(data_dir, tmp_path):
    folder = copy_dataset(data_dir, "mnist", tmp_path)
    path = folder / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[5000] ^= 0xFF  # a pixel: the file still parses, only the checksum can tell
    rewrite(path, gzip.compress(bytes(raw), compresslevel=1))
    with pytest.raises(DlabError, match=r"t10k-images-idx3-ubyte\.gz.*checksum") as info:
        load_dataset("mnist", "test", tmp_path)
    assert "\n" not in str(info.value)


def test_truncated_gz_is_an_error(data_dir, tmp_path):
    folder = copy_dataset(data_dir, "mnist", tmp_path)
    path = folder / "t10k-labels-idx1-ubyte.gz"
    rewrite(path, path.read_bytes()[:-100])
    with pytest.raises(DlabError, match=r"t10k-labels-idx1-ubyte\.gz.*truncated or corrupt"):
        load_dataset("mnist", "test", tmp_path)


def test_missing_file_is_named(data_dir, tmp_path):
    folder = copy_dataset(data_dir, "mnist", tmp_path)
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    from dlab.data.idx import load_idx_split

    spec = get_spec("mnist")
    with pytest.raises(DlabError, match=r"train-labels-idx1-ubyte.*not found"):
        load_idx_split(folder, spec.files["train"], spec.sha256)
    # Through the lookup, an incomplete folder is an error naming the missing file (not a
    # silent fall-through to another copy or a download).
    with pytest.raises(DlabError, match=r"incomplete: train-labels-idx1-ubyte\(\.gz\) is missing"):
        locate(spec, tmp_path, download=False)


def test_raw_uncompressed_idx_files_load(data_dir, tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for path in (data_dir / "mnist").glob("t10k-*.gz"):
        (folder / path.name[:-3]).write_bytes(gzip.decompress(path.read_bytes()))
    for path in (data_dir / "mnist").glob("train-*.gz"):
        shutil.copy(path, folder / path.name)
    test = load_dataset("mnist", "test", tmp_path)
    assert test.images.shape == (10000, 1, 28, 28)
    assert np.bincount(test.labels).tolist() == MNIST_TEST_COUNTS


def test_lookup_order_flag_env_cache(data_dir, tmp_path, monkeypatch):
    flag, env = tmp_path / "flag", tmp_path / "env"
    for root in (flag, env, user_data_dir()):
        copy_dataset(data_dir, "mnist", root)
    spec = get_spec("mnist")
    monkeypatch.setenv("DLAB_DATA_DIR", str(env))
    assert locate(spec, flag, download=False) == flag / "mnist"
    assert locate(spec, None, download=False) == env / "mnist"
    monkeypatch.delenv("DLAB_DATA_DIR")
    assert locate(spec, None, download=False) == user_data_dir() / "mnist"
    with pytest.raises(DlabError, match=r"data dir '.*nowhere' does not exist"):
        locate(spec, tmp_path / "nowhere", download=False)


def test_holdout_split_is_seeded_and_disjoint():
    train_a, val_a = holdout_split(1000, 100, seed=3)
    train_b, val_b = holdout_split(1000, 100, seed=3)
    _, val_c = holdout_split(1000, 100, seed=4)
    assert np.array_equal(val_a, val_b) and np.array_equal(train_a, train_b)
    assert not np.array_equal(val_a, val_c)
    assert len(val_a) == 100 and len(train_a) == 900
    assert not set(train_a) & set(val_a) and set(train_a) | set(val_a) == set(range(1000))
    with pytest.raises(DlabError, match="val_size = 1000"):
        holdout_split(1000, 1000, seed=0)


def test_load_splits_test_and_holdout(data_dir):
    train, val = load_splits(DataConfig(dataset="mnist", validation="test"), data_dir)
    assert (len(train), len(val), val.split) == (60000, 10000, "test")
    cfg = DataConfig(dataset="mnist", validation="holdout", val_size=5000, split_seed=1)
    train, val = load_splits(cfg, data_dir)
    assert (len(train), len(val), val.split) == (55000, 5000, "holdout")
    full = load_dataset("mnist", "train", data_dir)
    train_idx, val_idx = holdout_split(60000, 5000, 1)
    assert np.array_equal(val.labels, full.labels[val_idx])
    assert np.array_equal(train.images[:10], full.images[train_idx[:10]])
    limited, _ = load_splits(DataConfig(dataset="mnist", train_limit=100, val_limit=50), data_dir)
    assert len(limited) == 100
