"""Nothing is left behind by a refused or failed run (reliability findings c20, c39, c49, c50,
c54, c79, c84, f03, n15): no run directory without a checkpoint, no directory holding only
run.lock, no stale `.*.tmp` after the next start, no rewrite of a finished numpy run."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from dlab.cli import main
from dlab.config import resolve
from dlab.results import read_result
from dlab.runs import LOCK

TINY = ["--dataset", "mnist", "--epochs", "1", "--batch-size", "100", "--width", "0.5",
        "--set", "data.train_limit=300", "--set", "data.val_limit=200", "--quiet"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, data_dir) -> Path:
    root = tmp_path_factory.mktemp("runs")
    assert main(["train", *TINY, "--runs-dir", str(root), "--data-dir", str(data_dir)]) == 0
    (run,) = [p.parent for p in root.glob("*/config.json")]
    return run


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != LOCK}


@pytest.mark.parametrize("init_from,needle", [
    ("{tmp}/nonexistent", "not found"),  # c49: refused before the data loads
    ("{run}", "do not fit model 'net'"),  # c84: found when the model is built
], ids=["missing", "mismatched"])
def test_a_refused_init_from_leaves_no_run_directory(finished_run, tmp_path, capsys, data_dir,
                                                     init_from, needle):
    runs = tmp_path / "runs"
    source = init_from.format(tmp=tmp_path, run=finished_run)
    rc = main(["train", *TINY, "--width", "1", "--set", f"train.init_from={source}",
               "--runs-dir", str(runs), "--data-dir", str(data_dir)])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not runs.exists() or not any(runs.iterdir()), list(runs.rglob("*"))


class _Boom(RuntimeError):
    pass


@pytest.mark.parametrize("before", ["absent", "empty", "only run.lock", "started"])
def test_a_run_failing_before_its_first_checkpoint_leaves_no_directory(
        tmp_path, data_dir, monkeypatch, before):
    """A failure after the data loaded (c20, c39, c50, c54 raise in the model, the seed, the
    scheduler or augmentation): a directory this start created or found unstarted is removed;
    one holding an earlier attempt's checkpoint is kept."""
    from dlab.torch_engine import trainer
    from dlab.torch_engine.train import train_run

    def boom(self, *args, **kwargs):
        raise _Boom("failed in the first epoch")

    monkeypatch.setattr(trainer._Trainer, "run", boom)
    cfg = resolve({"data": {"dataset": "mnist", "train_limit": 300, "val_limit": 200},
                   "model": {"width": 0.5}, "train": {"epochs": 1, "batch_size": 100}})
    run = tmp_path / "run"
    if before != "absent":
        run.mkdir()
    if before == "only run.lock":
        (run / LOCK).touch()
    if before == "started":
        (run / "checkpoints").mkdir()
    with pytest.raises(_Boom):
        train_run(cfg, run, data_dir=data_dir, progress=False)
    assert run.is_dir() == (before == "started")


def test_stale_tmp_files_of_a_killed_write_are_removed_on_the_next_start(finished_run, tmp_path,
                                                                        data_dir):
    """f03: a kill during a checkpoint write leaves `.best-e0002.safetensors.<random>.tmp`."""
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "result.json").unlink()  # killed after its last checkpoint, before the result
    stale = [run / "checkpoints" / ".best-e0002.safetensors.nd7vv98o.tmp",
             run / "checkpoints" / ".last.json.k2j1x0aa.tmp",
             run / ".metrics.jsonl.q1w2e3r4.tmp"]
    for path in stale:
        path.write_bytes(b"\0" * 4096)
    assert main(["train", "--resume", str(run), "--quiet", "--data-dir", str(data_dir)]) == 0
    assert read_result(run)["status"] == "finished"
    assert not [p for p in run.rglob("*.tmp")]


def test_numpy_mlp_resume_of_a_finished_run_changes_nothing(tmp_path, data_dir, capsys):
    """n15: as for torch runs, `--resume` of a finished run is a no-op."""
    runs = tmp_path / "runs"
    assert main(["numpy", "mlp", "--data-dir", str(data_dir), "--runs-dir", str(runs),
                 "--epochs", "1", "--hidden", "32", "--set", "train_limit=1000",
                 "--set", "test_limit=200", "--set", "solver.train_eval_size=200"]) == 0
    (run,) = [p.parent for p in runs.glob("*/config.json")]
    before = _tree(run)
    capsys.readouterr()
    assert main(["numpy", "mlp", "--resume", str(run), "--data-dir", str(data_dir)]) == 0
    assert _tree(run) == before
    assert "epoch 1/1" not in capsys.readouterr().out  # nothing trained again
