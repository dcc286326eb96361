"""The dataset and format registries: a contract over every entry, and a new dataset as one
entry (an image-folder dataset added in a test, found, loaded, cached, listed, downloaded)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile

import numpy as np
import pytest

from dlab.cli import main
from dlab.data import DATASETS, DatasetSpec, dataset_stats, get_spec, load_dataset, sources
from dlab.data.formats import FORMATS, get_format
from dlab.data.store import locate, user_data_dir
from dlab.errors import DlabError
from dlab.paths import cache_root


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_dataset_entry_is_consistent(name):
    spec = get_spec(name)
    assert spec.name == name and spec.kind in FORMATS
    channels = spec.shape[0]
    assert len(spec.shape) == 3 and channels in (1, 3)
    assert len(spec.mean) == len(spec.std) == channels
    assert all(0 < m < 1 for m in spec.mean) and all(0 < s < 1 for s in spec.std)
    assert dataset_stats(name) == (spec.mean, spec.std)
    assert len(set(spec.classes)) == len(spec.classes) >= 2
    for digest in [*spec.sha256.values(), *spec.archives.values()]:
        assert len(digest) in (32, 64) and int(digest, 16) >= 0
    if spec.kind == "idx":
        assert set(spec.files) == {"train", "test"}
        assert {s for pair in spec.files.values() for s in pair} == set(spec.sha256)


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_every_format_on_an_empty_folder(kind, tmp_path):
    fmt, spec = get_format(kind), next(s for s in DATASETS.values())
    spec = dataclasses.replace(spec, kind=kind)
    assert not fmt.present(tmp_path, spec)
    fmt.refuse_incomplete(tmp_path, spec)  # nothing there is not "incomplete"
    with pytest.raises(DlabError, match="not found"):
        locate(spec, tmp_path, download=False)


def test_unknown_names_are_one_line_errors():
    with pytest.raises(DlabError, match=r"unknown dataset format 'hdf5'; expected one of: idx"):
        get_format("hdf5")
    with pytest.raises(DlabError, match=r"unknown dataset 'svhn'"):
        dataset_stats("svhn")


def _png(value: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 8), color=value).save(buf, format="PNG")
    return buf.getvalue()


def _tiny_archive() -> bytes:
    """train/ and test/ folders of 8x8 grey PNGs: 'dark' images are 10, 'light' ones 240."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for split, n in (("train", 3), ("test", 2)):
            for cls, value in (("dark", 10), ("light", 240)):
                for i in range(n):
                    data = _png(value)
                    info = tarfile.TarInfo(f"{split}/{cls}/{i:03d}.png")
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def tiny(monkeypatch):
    """A new dataset, added as nothing but one registry entry."""
    spec = DatasetSpec(name="tiny", kind="imagefolder", classes=("dark", "light"),
                       shape=(1, 8, 8), mean=(0.49,), std=(0.45,))
    monkeypatch.setitem(sources.DATASETS, "tiny", spec)
    monkeypatch.setattr("dlab.data.store.SYSTEM_DATASETS", user_data_dir() / "no-system")
    return spec


def test_a_new_dataset_is_one_entry(tiny, tmp_path, capsys):
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "tiny-png.tar.gz").write_bytes(_tiny_archive())
    train = load_dataset("tiny", "train", tmp_path)
    test = load_dataset("tiny", "test", tmp_path)
    assert train.images.shape == (6, 1, 8, 8) and train.classes == ("dark", "light")
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1] and len(test) == 4
    assert np.all(train.images[train.labels == 1] == 240)
    assert (cache_root() / "decoded").is_dir()  # cached like CIFAR-10
    assert dataset_stats("tiny") == ((0.49,), (0.45,))
    assert main(["datasets", "--data-dir", str(tmp_path)]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("tiny"))
    assert "tiny-png.tar.gz" in line and "in 1 files" in line


def test_a_new_dataset_downloads_from_its_entry(tiny, server, tmp_path, monkeypatch):
    archive = _tiny_archive()
    (tmp_path / "www" / "m").mkdir()
    (tmp_path / "www" / "m" / "tiny.tar.gz").write_bytes(archive)
    spec = dataclasses.replace(tiny, urls=(f"{server}/m/",),
                               archives={"tiny.tar.gz": hashlib.sha256(archive).hexdigest()})
    monkeypatch.setitem(sources.DATASETS, "tiny", spec)
    assert len(load_dataset("tiny", "train")) == 6
    assert (user_data_dir() / "tiny" / "tiny.tar.gz").read_bytes() == archive


def test_a_dataset_without_a_download_says_where_to_put_it(tiny):
    with pytest.raises(DlabError, match=r"dataset 'tiny' was not found locally.*--data-dir"):
        load_dataset("tiny", "train")


def test_loaded_arrays_are_checked_against_the_spec(tiny, tmp_path, monkeypatch):
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "tiny.tar.gz").write_bytes(_tiny_archive())
    load_dataset("tiny", "train", tmp_path)  # fills the cache
    fewer = dataclasses.replace(tiny, classes=("dark",))
    real_load = FORMATS["imagefolder"].load

    def load_as_if_two_classes(folder, spec, split):  # a format returning labels 0..1
        return real_load(folder, tiny, split)

    monkeypatch.setattr(FORMATS["imagefolder"], "load", load_as_if_two_classes)
    monkeypatch.setitem(sources.DATASETS, "tiny", fewer)
    with pytest.raises(DlabError, match=r"labels span 0\.\.1; expected 0\.\.0"):
        load_dataset("tiny", "train", tmp_path)
    monkeypatch.setitem(sources.DATASETS, "tiny", dataclasses.replace(tiny, shape=(3, 8, 8)))
    with pytest.raises(DlabError, match=r"images are uint8 \(6, 1, 8, 8\); expected uint8 "
                                        r"\(N, 3, 8, 8\)"):
        load_dataset("tiny", "train", tmp_path)
