"""`dlab gan train|sample|score` end to end on a tiny run; the FID flag's errors."""

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from dlab.cli import main


def _sets(cfg_flat):
    out = []
    for key, value in cfg_flat.items():
        out += ["--set", f"{key}={value}"]
    return out


TINY = {"data.train_limit": 256, "model.g_width": 8, "model.d_width": 8, "train.grid": 16,
        "train.batch_size": 32, "eval.n_samples": 300, "eval.n_epoch": 200,
        "eval.kid_subsets": 5, "eval.kid_subset_size": 100, "eval.extractor_epochs": 1,
        "eval.extractor_train_limit": 2000, "eval.test_limit": 1000}


def test_train_sample_score(tmp_path, data_dir, capsys):
    runs = tmp_path / "runs"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["gan", "train", "--kind", "dcgan", "--dataset", "mnist", "--epochs", "1",
                   "--runs-dir", str(runs), "--data-dir", str(data_dir), "--device", "cpu",
                   *_sets(TINY)])
    out = capsys.readouterr().out
    assert rc == 0 and "epoch 1/1" in out and "FD-dlab" in out
    (run,) = runs.iterdir()
    assert main(["gan", "sample", str(run), "--n", "10", "--out", str(tmp_path / "g.png"),
                 "--device", "cpu"]) == 0
    assert Image.open(tmp_path / "g.png").size == (8 * 30 + 2, 2 * 30 + 2)
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["gan", "score", str(run), "--n", "300", "--json", "--data-dir",
                     str(data_dir), "--device", "cpu"]) == 0
    score = json.loads(capsys.readouterr().out)
    result = json.loads((run / "result.json").read_text())
    # the same G, noise seed aside: the same order of magnitude as the run's own final score
    assert score["eval_n"] == 300 and np.isfinite(score["fd_dlab"])
    assert score["fd_dlab"] > score["fd_dlab_floor"]
    assert score["extractor_key"] == result["info"]["extractor_key"]


def test_fid_needs_the_weights_file(tmp_path, capsys):
    assert main(["gan", "score", str(tmp_path), "--metric", "fid"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pt_inception-2015-12-05-6726825d.pth" in err and "\n" not in err
    bad = tmp_path / "w.pth"
    bad.write_bytes(b"x")
    assert main(["gan", "score", str(tmp_path), "--metric", "fid",
                 "--inception-weights", str(bad)]) == 2
    assert "is not the FID Inception file's" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--kind", "biggan"], "model.kind = 'biggan'"),
    (["--kind", "wgan", "--set", "optim.clip=0"], "optim.clip = 0.0"),
    (["--set", "optim.n_critic=0"], "optim.n_critic = 0"),
])
def test_bad_flags_fail_before_training(tmp_path, capsys, args, message):
    assert main(["gan", "train", "--runs-dir", str(tmp_path / "runs"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
