"""`dlab datasets` and `dlab fetch` end to end, into tmp folders, with a local mirror."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from dlab.cli import main
from dlab.data import sources
from dlab.data.store import user_data_dir


@pytest.fixture
def no_system_datasets(tmp_path, monkeypatch):
    monkeypatch.setattr("dlab.data.store.SYSTEM_DATASETS", tmp_path / "no-system")


def test_datasets_lists_found_and_missing(data_dir, tmp_path, capsys, no_system_datasets):
    assert main(["datasets", "--data-dir", str(data_dir)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert set(lines) == set(sources.DATASETS)
    assert str(data_dir / "mnist") in lines["mnist"] and "in 4 files" in lines["mnist"]
    assert "cifar10-jpeg.tar.gz" in lines["cifar10"] and "19.4 MB" in lines["cifar10"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["datasets", "--data-dir", str(empty)]) == 0
    out = capsys.readouterr().out
    assert out.count("not found") == len(sources.DATASETS)


def test_datasets_with_missing_data_dir_is_an_error(tmp_path, capsys):
    assert main(["datasets", "--data-dir", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_fetch_prints_the_folder_found_or_downloaded(data_dir, server, tmp_path, capsys,
                                                     monkeypatch, no_system_datasets):
    assert main(["fetch", "mnist", "--data-dir", str(data_dir)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(data_dir / "mnist")
    assert "60000 train / 10000 test" in captured.err
    shutil.copytree(data_dir / "fashion-mnist", tmp_path / "www" / "fm")
    local = dataclasses.replace(sources.DATASETS["fashion-mnist"], urls=(f"{server}/fm/",))
    monkeypatch.setitem(sources.DATASETS, "fashion-mnist", local)
    assert main(["fetch", "fashion-mnist"]) == 0
    assert capsys.readouterr().out.strip() == str(user_data_dir() / "fashion-mnist")
    assert main(["fetch", "nonsense"]) == 2
    assert "unknown dataset 'nonsense'" in capsys.readouterr().err
