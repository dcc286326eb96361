"""End-to-end CLI: train, runs, eval, finetune, predict, resume and the one-line errors."""

import csv
import json

import pytest

from dlab.cli import main

TINY = ["--epochs", "1", "--batch-size", "64", "--set", "data.train_limit=512",
        "--set", "data.val_limit=200"]


def run_dirs(root):
    return sorted(p.parent for p in root.glob("*/config.json"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("runs")
    assert main(["train", "--data-dir", str(data_dir), "--runs-dir", str(root), "--quiet",
                 *TINY, "--lr", "0.1", "--set", "data.train_limit=2000"]) == 0  # 32 steps
    (run,) = run_dirs(root)
    return root, run


def test_train_prints_final_accuracy_and_writes_a_run(trained, capsys, data_dir):
    root, run = trained
    result = json.loads((run / "result.json").read_text())
    # chance is 0.10 on the 200 validation images (sd 0.02); 32 SGD steps at lr 0.1 give ~0.4
    assert result["status"] == "finished" and result["final"]["val_acc"] > 0.25
    assert result["best"]["val_acc"] >= result["final"]["val_acc"]
    assert json.loads((run / "config.json").read_text())["data"]["dataset"] == "fashion-mnist"
    main(["runs", "--runs-dir", str(root)])
    out = capsys.readouterr().out
    assert run.name in out and "finished" in out and f"{100 * result['best']['val_acc']:.2f}%" in out


def test_two_trainings_of_one_config_get_two_run_dirs(tmp_path, data_dir):
    for _ in range(2):
        assert main(["train", "--data-dir", str(data_dir), "--runs-dir", str(tmp_path),
                     "--quiet", *TINY]) == 0
    assert len(run_dirs(tmp_path)) == 2


def test_eval_predict_and_finetune(trained, tmp_path, capsys, data_dir):
    root, run = trained
    assert main(["eval", str(run), "--dataset", "mnist", "--data-dir", str(data_dir),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["dataset"] == "mnist" and result["n"] == 10000
    out = tmp_path / "pred.csv"
    assert main(["predict", str(run / "checkpoints" / "best"), "--out", str(out),
                 "--data-dir", str(data_dir)]) == 0
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["image_id", "label"] and len(rows) == 10001
    assert [int(r[0]) for r in rows[1:4]] == [0, 1, 2] and all(0 <= int(r[1]) < 10 for r in rows[1:])
    ft_root = tmp_path / "ft"
    assert main(["finetune", str(run), "--dataset", "mnist", "--lr-factor", "0.05",
                 "--data-dir", str(data_dir), "--runs-dir", str(ft_root), "--quiet", *TINY]) == 0
    (ft,) = run_dirs(ft_root)
    cfg = json.loads((ft / "config.json").read_text())
    assert cfg["data"]["dataset"] == "mnist"
    assert cfg["optim"]["lr"] == pytest.approx(0.1 * 0.05)
    assert cfg["train"]["init_from"].endswith("checkpoints/best")


@pytest.mark.parametrize("argv,needle", [
    (["train", "--dataset", "svhn"], "unknown dataset 'svhn'"),
    (["train", "--lr", "0"], "lr = 0.0"),
    (["train", "--dropout", "2"], "dropout = 2.0"),
    (["train", "--batch-size", "0"], "batch size = 0"),
    (["train", "--optimizer", "sgdx"], "unknown optimizer 'sgdx'"),
    (["train", "--model", "alexnet"], "unknown model 'alexnet'"),
    (["train", "--set", "model.depth=3"], "unknown config key 'model.depth'"),
    (["eval", "/nonexistent/run", "--dataset", "mnist"], "checkpoint '/nonexistent/run' not found"),
    (["finetune", "/nonexistent/run", "--dataset", "mnist"], "not found"),
    (["train", "--resume"], "no interrupted run"),
])
def test_bad_input_is_one_line_before_any_work(argv, needle, tmp_path, capsys):
    assert main([*argv, "--runs-dir", str(tmp_path)] if argv[0] != "eval" else argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not list(tmp_path.glob("*/config.json")), "a run directory was written"


def test_missing_data_file_is_an_error_and_leaves_no_run_dir(tmp_path, data_dir, capsys):
    broken = tmp_path / "data" / "fashion-mnist"
    broken.mkdir(parents=True)
    for f in (data_dir / "fashion-mnist").iterdir():
        if not f.name.startswith("t10k-labels"):
            (broken / f.name).symlink_to(f)
    runs = tmp_path / "runs"
    assert main(["train", "--data-dir", str(tmp_path / "data"), "--runs-dir", str(runs),
                 "--quiet", *TINY]) == 2
    err = capsys.readouterr().err
    assert "t10k-labels-idx1-ubyte" in err
    assert not run_dirs(runs) and not (runs.exists() and any(runs.iterdir()))
