"""Downloads against a local HTTP server on 127.0.0.1: success, fallback, mismatch, no network."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import shutil
import socket
import tarfile
from pathlib import Path

import numpy as np
import pytest

from dlab.data import get_spec, load_dataset
from dlab.data.cifar import find_cifar_source
from dlab.data.idx import load_idx_split
from dlab.data.store import download_dataset, locate, user_data_dir
from dlab.errors import DlabError


def www(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "www" / name
    path.mkdir(parents=True)
    return path


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_idx_download_falls_back_to_second_url_and_verifies(server, served_paths, tmp_path,
                                                           data_dir):
    shutil.copytree(data_dir / "mnist", tmp_path / "www" / "mirror")
    spec = dataclasses.replace(get_spec("mnist"),
                               urls=(f"{server}/missing/", f"{server}/mirror/"))
    dest = download_dataset(spec, tmp_path / "dest")
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        f"{stem}.gz" for pair in spec.files.values() for stem in pair)  # no temp files left
    # The dead mirror is tried once; the one that answered serves the remaining files.
    assert [p for p in served_paths if p.startswith("/missing/")] == [
        "/missing/train-images-idx3-ubyte.gz"]
    images, labels = load_idx_split(dest, spec.files["test"], spec.sha256)
    assert images.shape == (10000, 1, 28, 28) and labels.shape == (10000,)


def test_checksum_mismatch_keeps_nothing(server, tmp_path, data_dir):
    mirror = www(tmp_path, "mirror")
    for path in (data_dir / "mnist").iterdir():
        shutil.copy(path, mirror / path.name)
    raw = bytearray(gzip.decompress((mirror / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    raw[100] ^= 1
    (mirror / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    spec = dataclasses.replace(get_spec("mnist"), urls=(f"{server}/mirror/",))
    dest = tmp_path / "dest"
    with pytest.raises(DlabError) as info:
        download_dataset(spec, dest)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte.gz" in message and "checksum" in message
    assert spec.sha256["t10k-labels-idx1-ubyte"] in message
    assert hashlib.sha256(bytes(raw)).hexdigest() in message
    assert not any("t10k-labels" in p.name for p in dest.iterdir())
    assert not any(p.name.endswith(".part") for p in dest.iterdir())


def test_unreachable_network_says_what_to_do(tmp_path):
    spec = dataclasses.replace(get_spec("fashion-mnist"), urls=(closed_port_url(),))
    with pytest.raises(DlabError) as info:
        download_dataset(spec, tmp_path / "dest")
    message = str(info.value)
    assert "\n" not in message
    assert "not found locally" in message and "download failed" in message
    assert "--data-dir" in message and "apt-get install dataset-fashion-mnist" in message
    assert list((tmp_path / "dest").iterdir()) == []


def test_lookup_downloads_into_the_user_cache(server, tmp_path, data_dir, monkeypatch):
    shutil.copytree(data_dir / "fashion-mnist", tmp_path / "www" / "fm")
    spec = dataclasses.replace(get_spec("fashion-mnist"), urls=(f"{server}/fm/",))
    monkeypatch.setattr("dlab.data.store.SYSTEM_DATASETS", tmp_path / "no-system")
    folder = locate(spec, None)
    assert folder == user_data_dir() / "fashion-mnist"
    # The next lookup finds the downloaded copy without the network.
    monkeypatch.setattr("dlab.data.store.download_dataset", None)
    assert locate(spec, None) == folder
    assert len(load_dataset("fashion-mnist", "test")) == 10000


def test_cifar_binary_tarball_download(server, tmp_path):
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for stem in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            records = rng.integers(0, 256, (4, 3073), dtype=np.uint8)
            records[:, 0] %= 10
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{stem}.bin")
            info.size = records.nbytes
            tf.addfile(info, io.BytesIO(records.tobytes()))
    archive = buf.getvalue()
    (www(tmp_path, "kriz") / "cifar-10-binary.tar.gz").write_bytes(archive)
    md5 = hashlib.md5(archive).hexdigest()
    good = dataclasses.replace(get_spec("cifar10"), urls=(f"{server}/kriz/",),
                               archives={"cifar-10-binary.tar.gz": md5})
    dest = download_dataset(good, tmp_path / "ok")
    assert find_cifar_source(dest).kind == "binary"
    bad = dataclasses.replace(good, archives={"cifar-10-binary.tar.gz": "0" * 32})
    with pytest.raises(DlabError, match=r"cifar-10-binary\.tar\.gz.*wrong md5 checksum: "
                                         r"expected 0{32}, got [0-9a-f]{32}"):
        download_dataset(bad, tmp_path / "bad")
    assert list((tmp_path / "bad").iterdir()) == []


def _junk(kind: str, good: bytes) -> bytes:
    """A file a bad mirror might serve in place of `good` (a gzipped IDX file)."""
    if kind == "random":
        return np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    if kind == "truncated":
        return good[: len(good) // 2]
    return gzip.compress(b"\0\0\x08\x01" + bytes(8))  # a valid gzip of the wrong content


def bad_mirror(tmp_path: Path, name: str, kind: str, data_dir: Path) -> None:
    """A mirror whose first file (the only one asked of it) is junk."""
    first = "train-images-idx3-ubyte.gz"
    (www(tmp_path, name) / first).write_bytes(_junk(kind, (data_dir / "mnist" / first)
                                                    .read_bytes()))


@pytest.mark.parametrize("junk", ["random", "truncated", "wrong"])
def test_a_mirror_with_a_bad_file_falls_through_to_the_next(junk, server, served_paths,
                                                            tmp_path, data_dir):
    """dl5: mirrors (corrupt, good) stopped at the first mirror's checksum mismatch."""
    good = www(tmp_path, "good")
    bad_mirror(tmp_path, "bad", junk, data_dir)
    for path in (data_dir / "mnist").iterdir():
        shutil.copy(path, good / path.name)
    spec = dataclasses.replace(get_spec("mnist"), urls=(f"{server}/bad/", f"{server}/good/"))
    dest = download_dataset(spec, tmp_path / "dest")
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in good.iterdir())
    assert "/bad/train-images-idx3-ubyte.gz" in served_paths
    images, labels = load_idx_split(dest, spec.files["test"], spec.sha256)
    assert images.shape == (10000, 1, 28, 28)


def test_every_mirror_bad_names_each(server, tmp_path, data_dir):
    for name in ("a", "b"):
        bad_mirror(tmp_path, name, "wrong", data_dir)
    spec = dataclasses.replace(get_spec("mnist"), urls=(f"{server}/a/", f"{server}/b/",
                                                        closed_port_url()))
    with pytest.raises(DlabError) as info:
        download_dataset(spec, tmp_path / "dest")
    message = str(info.value)
    assert "\n" not in message and "train-images-idx3-ubyte.gz" in message
    assert message.count("wrong sha256 checksum") == 2 and "/a/" in message and "/b/" in message
    assert list((tmp_path / "dest").iterdir()) == []


def test_cifar_archive_from_the_second_mirror(server, tmp_path):
    archive = b"the real archive"
    (www(tmp_path, "bad") / "cifar-10-binary.tar.gz").write_bytes(b"junk")
    (www(tmp_path, "good") / "cifar-10-binary.tar.gz").write_bytes(archive)
    spec = dataclasses.replace(
        get_spec("cifar10"), urls=(f"{server}/bad/", f"{server}/good/"),
        archives={"cifar-10-binary.tar.gz": hashlib.md5(archive).hexdigest()})
    from dlab.data.formats import get_format

    get_format("cifar10").download(spec, tmp_path, timeout_s=10)
    assert (tmp_path / "cifar-10-binary.tar.gz").read_bytes() == archive


def test_fetch_cli_uses_the_good_mirror(server, tmp_path, data_dir, monkeypatch, capsys):
    """dl5 as the finding ran it: `dlab fetch mnist` with mirrors (corrupt, good)."""
    from dlab.cli import main
    from dlab.data import sources

    monkeypatch.setattr("dlab.data.store.SYSTEM_DATASETS", tmp_path / "no-system")
    good = www(tmp_path, "good")
    bad_mirror(tmp_path, "bad", "random", data_dir)
    for path in (data_dir / "mnist").iterdir():
        shutil.copy(path, good / path.name)
    local = dataclasses.replace(sources.DATASETS["mnist"],
                                urls=(f"{server}/bad/", f"{server}/good/"))
    monkeypatch.setitem(sources.DATASETS, "mnist", local)
    assert main(["fetch", "mnist"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(user_data_dir() / "mnist")
    assert "60000 train / 10000 test" in captured.err
