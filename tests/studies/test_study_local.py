"""The local pool: a study killed with SIGKILL mid-way resumes; finished runs stay byte-identical."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlab.runs import read_jsonl, read_result
from dlab.studies import load_study, plan_study

DLAB = str(Path(sys.executable).parent / "dlab")


def _wait_until_no_run_is_locked(plan, timeout_s: float = 10.0) -> None:
    """After the pool is killed: its children (forked by its fork server) must die with it."""
    from dlab.runs import is_locked

    deadline = time.monotonic() + timeout_s
    while any(r.run_dir.is_dir() and is_locked(r.run_dir) for r in plan.runs):
        assert time.monotonic() < deadline, "a child outlived its killed parent"
        time.sleep(0.1)


def _run_cmd(study: Path, runs: Path, data_dir: Path) -> list[str]:
    return [DLAB, "study", "run", str(study), "--workers", "2", "--threads", "1",
            "--runs-dir", str(runs), "--data-dir", str(data_dir)]


@pytest.mark.slow  # ~30 s on a quiet 2-core box, >2 min when it is shared
def test_sigkill_midway_then_rerun_keeps_finished_runs_and_completes(tmp_path, data_dir,
                                                                   make_tiny_study, checksums):
    study = make_tiny_study(tmp_path / "s.toml", "killme", ["a", "b", "c"], epochs=3, steps=True)
    runs = tmp_path / "runs"
    plan = plan_study(load_study(study), runs)
    assert len(plan.runs) == 5  # 3 trainings, 1 eval, 1 finetune
    proc = subprocess.Popen(_run_cmd(study, runs, data_dir), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    while not any(read_result(r.run_dir) for r in plan.runs):
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "no run finished in time"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)  # the parent only: its children must die with it
    proc.wait()
    _wait_until_no_run_is_locked(plan)  # the children die a moment after the parent
    finished = [r for r in plan.runs if read_result(r.run_dir) is not None]
    assert 0 < len(finished) < len(plan.runs)
    before = {r.key: checksums(r.run_dir) for r in finished}
    rerun = subprocess.run(_run_cmd(study, runs, data_dir), capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"{len(finished)} already done" in rerun.stdout
    for r in finished:
        assert checksums(r.run_dir) == before[r.key], f"finished run {r.key} changed"
    for r in plan.runs:
        result = read_result(r.run_dir)
        assert result is not None and result["status"] == "finished", r.key
        if r.kind != "eval":
            epochs = [row["epoch"] for row in read_jsonl(r.run_dir / "metrics.jsonl")]
            assert epochs == list(range(1, r.config.train.epochs + 1)), (r.key, epochs)
    (ev,) = [r for r in plan.runs if r.kind == "eval"]
    result = json.loads((ev.run_dir / "result.json").read_text())
    assert result["kind"] == "eval" and result["info"]["dataset"] == "mnist"
    assert result["info"]["source"] == ev.depends_on and result["info"]["n"] == 10000
    from dlab.torch_engine.evaluate import evaluate_checkpoint

    # the source's best checkpoint, unchanged, on the whole MNIST test split: the same number
    again = evaluate_checkpoint(ev.checkpoint, "mnist", data_dir=data_dir, device="cpu")
    assert result["final"]["val_acc"] == pytest.approx(again["val_acc"], abs=1e-9)
    (ft,) = [r for r in plan.runs if r.kind == "finetune"]
    assert json.loads((ft.run_dir / "config.json").read_text())["train"]["init_from"] == str(
        ft.source_dir / "checkpoints" / "best")
    # a third run trains nothing
    again = subprocess.run(_run_cmd(study, runs, data_dir), capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0 and "ran 0 items" in again.stdout
    assert "5 already done" in again.stdout


def test_no_orphans_hold_run_locks_after_sigkill(tmp_path, data_dir, make_tiny_study):
    """The children of a killed `dlab study run` exit with it (no run dir stays locked)."""
    study = make_tiny_study(tmp_path / "s.toml", "orphans", ["a", "b"], epochs=50)
    runs = tmp_path / "runs"
    plan = plan_study(load_study(study), runs)
    proc = subprocess.Popen(_run_cmd(study, runs, data_dir), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    from dlab.runs import is_locked

    while not any(r.run_dir.is_dir() and is_locked(r.run_dir) for r in plan.runs):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait_until_no_run_is_locked(plan)


def test_ctrl_c_stops_the_items_cleanly_and_leaves_them_resumable(tmp_path, data_dir,
                                                                  make_tiny_study):
    """SIGINT (Ctrl-C) to `dlab study run`: the children stop at once, every started run keeps
    a valid last checkpoint and no lock, and `study status` calls them interrupted."""
    from dlab.runs import is_locked
    from dlab.torch_engine.checkpoint import read_checkpoint

    study = make_tiny_study(tmp_path / "s.toml", "ctrlc", ["a", "b"], epochs=200)
    runs = tmp_path / "runs"
    plan = plan_study(load_study(study), runs)
    proc = subprocess.Popen(_run_cmd(study, runs, data_dir), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not all((r.run_dir / "checkpoints" / "last.json").exists() for r in plan.runs):
        assert time.monotonic() < deadline and proc.poll() is None, "no checkpoints in time"
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "interrupted" in out
    for r in plan.runs:
        assert not is_locked(r.run_dir) and read_result(r.run_dir) is None
        meta, _ = read_checkpoint(r.run_dir / "checkpoints" / "last")  # checksum-verified
        # at most the row of an epoch whose checkpoint was not written yet (resume drops it)
        assert meta["epoch"] <= len(read_jsonl(r.run_dir / "metrics.jsonl")) <= meta["epoch"] + 1
    status = subprocess.run([DLAB, "study", "status", str(study), "--runs-dir", str(runs)],
                            capture_output=True, text=True, timeout=60)
    n = len(plan.runs)
    assert f"{n} interrupted of {n} items" in status.stdout, status.stdout
