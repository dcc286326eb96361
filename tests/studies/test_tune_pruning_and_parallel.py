"""`dlab tune`: pruning for real (through the trainer's on_epoch hook), a pruned config that is
drawn again (pruned again at the same point without training, or continued from its
checkpoint), and parallel processes on one storage (each config trained once, never two
trainings in one run directory, finished configs reused)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dlab.runs import read_jsonl
from dlab.studies.tune import load_tune_spec, run_tune

DLAB = str(Path(sys.executable).parent / "dlab")
SPACE = """name = "p"
trials = 3
seed = 0
[base]
data.train_limit = 512
data.val_limit = 256
model.width = 0.5
train.epochs = 3
train.batch_size = 128
[space."optim.lr"]
type = "categorical"
choices = [0.05, 0.00001]
[pruner]
startup_trials = {startup}
warmup_epochs = 0
"""


def _study(url: str):
    import optuna

    from dlab.studies.tune import open_storage

    return optuna.load_study(study_name="dlab-tune:p", storage=open_storage(url))


def _epochs(run_dir: str) -> list[int]:
    return [row["epoch"] for row in read_jsonl(Path(run_dir) / "metrics.jsonl")]


def test_a_bad_config_is_pruned_and_not_pruned_forever(tmp_path, data_dir):
    import optuna

    space = tmp_path / "p.toml"
    space.write_text(SPACE.format(startup=1))
    spec, runs = load_tune_spec(space), tmp_path / "runs"
    first = run_tune(spec, runs, trials=0, data_dir=data_dir, device="cpu", echo=lambda s: None)
    study = _study(first["storage"])
    for lr in (0.05, 0.00001, 0.00001):  # a good config, then a hopeless one twice
        study.enqueue_trial({"optim.lr": lr})
    lines: list[str] = []
    run_tune(spec, runs, trials=3, data_dir=data_dir, device="cpu", echo=lines.append)
    trials = _study(first["storage"]).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE,
                                         optuna.trial.TrialState.PRUNED,
                                         optuna.trial.TrialState.PRUNED], lines
    bad_dir = trials[1].user_attrs["run_dir"]
    assert trials[2].user_attrs["run_dir"] == bad_dir
    stopped = _epochs(bad_dir)
    assert stopped == list(range(1, len(stopped) + 1)) and len(stopped) < 3  # stopped early
    assert trials[2].intermediate_values == trials[1].intermediate_values  # replayed, not retrained
    assert _epochs(trials[0].user_attrs["run_dir"]) == [1, 2, 3]
    # a later search that does not prune it continues the pruned run from its checkpoint
    space.write_text(SPACE.format(startup=100))
    _study(first["storage"]).enqueue_trial({"optim.lr": 0.00001})
    before = read_jsonl(Path(bad_dir) / "metrics.jsonl")
    out = run_tune(load_tune_spec(space), runs, trials=1, data_dir=data_dir, device="cpu",
                   echo=lines.append)
    last = _study(first["storage"]).trials[-1]
    assert last.state == optuna.trial.TrialState.COMPLETE, lines
    rows = read_jsonl(Path(bad_dir) / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2, 3] and rows[:len(before)] == before
    assert out["direction"] == "max" and out["primary"] == "val_acc"
    assert out["best_value"] == max(t.value for t in _study(first["storage"]).trials
                                    if t.value is not None)


@pytest.mark.slow
def test_parallel_tune_processes_train_each_config_once(tmp_path, data_dir):
    space = tmp_path / "p.toml"
    space.write_text(SPACE.format(startup=100).replace("train.epochs = 3", "train.epochs = 2"))
    cmd = [DLAB, "tune", str(space), "--trials", "3", "--runs-dir", str(tmp_path / "runs"),
           "--data-dir", str(data_dir)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    text = "\n".join(outs)
    assert "in use" not in text and "Traceback" not in text, text
    trained = re.findall(r"'optim.lr': ([0-9.e-]+)\} -> finished", text)
    reused = re.findall(r"-> reused finished run", text)
    assert len(trained) == len(set(trained)) and len(trained) + len(reused) == 6, text
    for run_dir in (tmp_path / "runs" / "tune" / "p").iterdir():
        if run_dir.is_dir():
            assert _epochs(str(run_dir)) == [1, 2], run_dir  # trained once, never twice at once
