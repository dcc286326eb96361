"""`dlab numpy mlp` and `dlab gradcheck` end to end on a small slice of MNIST."""

import json

import pytest

from dlab.cli import main
from dlab.results import read_result


def test_numpy_mlp_run_directory(tmp_path, data_dir, capsys):
    rc = main(["numpy", "mlp", "--data-dir", str(data_dir), "--runs-dir", str(tmp_path / "runs"),
               "--epochs", "2", "--hidden", "64", "32", "--augment", "--set", "train_limit=3000",
               "--set", "test_limit=500", "--set", "solver.train_eval_size=500"])
    assert rc == 0
    run = next((tmp_path / "runs").iterdir())
    result = read_result(run)
    assert result["schema"] == 2 and result["task"] == "numpy-mlp"
    assert result["status"] == "finished" and result["epochs_completed"] == 2
    assert result["info"]["augmented"] is True and result["info"]["validation"] == "test"
    assert result["final"]["val_acc"] > 0.5  # chance is 0.1; 46 augmented steps
    assert result["best"]["val_acc"] >= result["final"]["val_acc"]
    assert result["params"] == 784 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10
    assert json.loads((run / "config.json").read_text())["model"]["hidden"] == [64, 32]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    for fig in ("curves", "confusion_matrix", "confident_errors", "common_errors"):
        assert (run / f"{fig}.png").stat().st_size > 1000
    cm = json.loads((run / "confusion_matrix.json").read_text())["matrix"]
    assert sum(map(sum, cm)) == 500


def test_numpy_mlp_bad_input(tmp_path, data_dir, capsys):
    rc = main(["numpy", "mlp", "--data-dir", str(data_dir), "--runs-dir", str(tmp_path / "runs"),
               "--lr", "-0.5"])
    err = capsys.readouterr().err
    assert rc == 2 and "learning rate -0.5" in err and len(err.strip().splitlines()) == 1
    rc = main(["numpy", "mlp", "--runs-dir", str(tmp_path / "runs"), "--dropout", "1.0", "0.2"])
    assert rc == 2 and "dropout rate 1.0" in capsys.readouterr().err
    rc = main(["numpy", "mlp", "--runs-dir", str(tmp_path / "runs"), "--set", "solver.update_rule=lbfgs"])
    assert rc == 2 and "unknown update rule 'lbfgs'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_gradcheck_command_prints_errors(capsys):
    assert main(["gradcheck", "--only", "affine", "conv_im2col"]) == 0
    out = capsys.readouterr().out
    errors = {tuple(line.split()[:2]): float(line.split()[2]) for line in out.splitlines()
              if line.startswith(("affine ", "conv_im2col "))}
    assert set(errors) == {(name, p) for name in ("affine", "conv_im2col") for p in "xwb"}
    # centred differences in float64: a wrong backward gives errors near 1, not 1e-7
    assert max(errors.values()) < 1e-7
    worst = float(out.split("worst relative error:")[1].split()[0])
    assert worst == pytest.approx(max(errors.values()), rel=0.01)


def test_numpy_mlp_resume_of_a_torch_run_is_one_line(tmp_path, capsys):
    """findings: n08 — `dlab numpy mlp --resume <a torch run dir>` names the task it holds
    (was `unknown config key 'data'`) and changes nothing there."""
    from dlab.config import resolve
    from dlab.runs import start_run

    run = tmp_path / "torch-run"
    run.mkdir()
    start_run(run, resolve({}).to_dict(), {"task": "classification"})
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert main(["numpy", "mlp", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not a numpy MLP run" in err, err
    assert "'classification'" in err and str(run) in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
