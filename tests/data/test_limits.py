"""`data.train_limit` / `data.val_limit`: seeded, class-balanced subsets (finding m2: a prefix
of a class-sorted archive trained on airplanes only and reported 100%)."""

from __future__ import annotations

import numpy as np
import pytest

from dlab.config import DataConfig
from dlab.data import balanced_subset, dataset_stats, load_dataset, load_splits


@pytest.mark.parametrize("counts, limit, expected", [
    ([100] * 10, 2000, [100] * 10),       # limit above N: everything
    ([500] * 10, 2000, [200] * 10),
    ([500] * 4, 10, None),                 # 10 = 4 * 2 + 2: two classes get one more
    ([3, 500, 500], 99, [3, 48, 48]),      # a small class gives its unused share to the others
    ([1, 1, 1000], 500, [1, 1, 498]),
])
def test_balanced_subset_shares(counts, limit, expected):
    labels = np.repeat(np.arange(len(counts)), counts)  # sorted by class, as the archives are
    index = balanced_subset(labels, limit, seed=0)
    got = np.bincount(labels[index], minlength=len(counts))
    assert len(index) == min(limit, len(labels)) and len(set(index.tolist())) == len(index)
    if expected is not None:
        assert got.tolist() == expected
    else:
        assert sorted(got.tolist()) == [2, 2, 3, 3]
    assert np.all(np.diff(index) > 0)  # the dataset's own order


def test_balanced_subset_is_seeded():
    labels = np.random.default_rng(1).integers(0, 10, 5000)
    a, b = balanced_subset(labels, 777, seed=3), balanced_subset(labels, 777, seed=3)
    c = balanced_subset(labels, 777, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.bincount(labels[a]).max() - np.bincount(labels[a]).min() <= 1


@pytest.mark.parametrize("validation", ["test", "holdout"])
def test_mnist_limits_cover_every_class(data_dir, validation):
    cfg = DataConfig(dataset="mnist", validation=validation, val_size=5000, split_seed=2,
                     train_limit=2000, val_limit=500)
    train, val = load_splits(cfg, data_dir)
    assert np.bincount(train.labels, minlength=10).tolist() == [200] * 10
    assert np.bincount(val.labels, minlength=10).tolist() == [50] * 10
    again, _ = load_splits(cfg, data_dir)
    np.testing.assert_array_equal(train.images, again.images)
    other, _ = load_splits(DataConfig(**{**cfg.__dict__, "split_seed": 3}), data_dir)
    assert not np.array_equal(train.labels, other.labels) or \
        not np.array_equal(train.images, other.images)
    if validation == "holdout":  # the subsets stay inside their own side of the hold-out
        rows = {r.tobytes() for r in val.images.reshape(len(val), -1)}
        assert not rows & {r.tobytes() for r in train.images.reshape(len(train), -1)}


@pytest.fixture(scope="module")
def decoded_cifar_cache(tmp_path_factory):
    """One cache folder for the module, so the 60k JPEGs are decoded once (10-35 s)."""
    return tmp_path_factory.mktemp("cifar-cache")


def test_cifar10_limits_cover_every_class_and_its_stats(data_dir, decoded_cifar_cache,
                                                        monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(decoded_cifar_cache))
    cfg = DataConfig(dataset="cifar10", train_limit=2000, val_limit=500, split_seed=0)
    train, val = load_splits(cfg, data_dir)
    assert train.images.shape == (2000, 3, 32, 32)
    assert np.bincount(train.labels, minlength=10).tolist() == [200] * 10
    assert np.bincount(val.labels, minlength=10).tolist() == [50] * 10
    # The spec's statistics are CIFAR-10's own: measured on the whole training set here.
    full = load_dataset("cifar10", "train", data_dir).images.astype(np.float64) / 255
    mean, std = dataset_stats("cifar10")
    np.testing.assert_allclose(full.mean(axis=(0, 2, 3)), mean, atol=2e-3)
    np.testing.assert_allclose(full.std(axis=(0, 2, 3)), std, atol=2e-3)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_stats_are_the_datasets_own(data_dir, name):
    images = load_dataset(name, "train", data_dir).images.astype(np.float64) / 255
    mean, std = dataset_stats(name)
    assert len(mean) == len(std) == 1
    assert abs(images.mean() - mean[0]) < 1e-3 and abs(images.std() - std[0]) < 1e-3
