"""One extractor cache for the whole generative test session (the classifier trains once)."""

import pytest

from dlab.tasks import get_task


@pytest.fixture(scope="session")
def _gan_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("gan-cache")


@pytest.fixture(autouse=True)
def _shared_extractor_cache(_isolated_env, _gan_cache, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(_gan_cache))


def _tiny(kind="dcgan", **sections):
    """A GAN config that trains in seconds: 256 MNIST images, widths 8, small evaluations."""
    data = {"data": {"dataset": "mnist", "train_limit": 256},
            "model": {"kind": kind, "g_width": 8, "d_width": 8},
            "train": {"epochs": 1, "batch_size": 32, "grid": 16},
            "eval": {"n_samples": 300, "n_epoch": 200, "kid_subsets": 5, "kid_subset_size": 100,
                     "extractor_epochs": 1, "extractor_train_limit": 2000, "test_limit": 1000}}
    for key, values in sections.items():
        data.setdefault(key, {}).update(values)
    return get_task("gan").resolve(data)


@pytest.fixture
def tiny():
    return _tiny
