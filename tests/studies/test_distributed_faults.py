"""`dlab study work` under faults, on SQLite and on a real PostgreSQL server: kill -9, SIGINT and
SIGTERM of a worker before training, mid-training and while it waits for a source. Afterwards
every item is done, none lost, and no epoch was trained twice (each logged epoch is past a
saved checkpoint, so a resumed item continues instead of repeating it; a worker stopped between
a checkpoint and its log line leaves that one epoch unlogged). Also: concurrent
enqueues add each item once; bad worker options are one-line errors.

The study: q1/a (3 epochs) is the source of q2/eval and q2/ft; with `extra`, q1/b too.
"""

from __future__ import annotations

import multiprocessing
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_study_distributed import postgres_url  # noqa: F401  (the PostgreSQL server fixture)

from dlab.errors import DlabError
from dlab.runs import read_jsonl, read_result
from dlab.studies import load_study, plan_study

DLAB = str(Path(sys.executable).parent / "dlab")
EPOCHS = 3


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    return request.getfixturevalue("postgres_url")


def _setup(tmp_path, make_tiny_study, url, labels):
    from dlab.studies.distributed import enqueue_plan

    name = f"f{abs(hash(str(tmp_path))) % 10**8}"  # a fresh study per test on a shared server
    study_file = make_tiny_study(tmp_path / "s.toml", name, labels, epochs=EPOCHS, steps=True)
    plan = plan_study(load_study(study_file), tmp_path / "runs")
    assert enqueue_plan(plan, url) == (len(plan.runs), 0)
    return study_file, plan


class Worker:
    """A `dlab study work` process whose output goes to a file (read while it runs)."""

    def __init__(self, study_file, url, tmp_path, data_dir, name):
        self.log = tmp_path / f"{name}.log"
        cmd = [DLAB, "study", "work", str(study_file), "--storage", url, "--runs-dir",
               str(tmp_path / "runs"), "--data-dir", str(data_dir), "--threads", "1",
               "--heartbeat", "1", "--grace", "3", "--poll", "0.2"]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("w"), stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, pattern: str, timeout_s: float = 240) -> None:
        deadline = time.monotonic() + timeout_s
        while not re.search(pattern, self.text()):
            assert self.proc.poll() is None, f"worker ended before {pattern!r}:\n{self.text()}"
            assert time.monotonic() < deadline, f"no {pattern!r} in:\n{self.text()}"
            time.sleep(0.02)

    def finish(self, timeout_s: float = 400) -> int:
        return self.proc.wait(timeout=timeout_s)


def _logged_epochs(log: str, key: str) -> list[int]:
    return [int(e) for e in re.findall(rf"epoch (\d+) of {key}", log)]


def _check_all_done_once(plan, url, logs: list[str], stopped: str | None = None
                         ) -> dict[str, dict]:
    """Every item done and finished, and no epoch trained twice. `stopped`, the log of a worker
    signalled while it trained: it may have saved one more epoch than it logged (the line
    follows the checkpoint), so the epoch right after its last logged one may be unlogged."""
    from dlab.studies.queue import Queue

    rows = {r["key"]: r for r in Queue(url, f"dlab-study:{plan.study.name}").rows()}
    assert {k: r["state"] for k, r in rows.items()} == {i.key: "done" for i in plan.runs}
    for item in plan.runs:
        assert read_result(item.run_dir)["status"] == "finished", item.key
        if item.kind == "eval":
            continue
        want = list(range(1, item.config.train.epochs + 1))
        assert [r["epoch"] for r in read_jsonl(item.run_dir / "metrics.jsonl")] == want
        trained = [e for log in logs for e in _logged_epochs(log, item.key)]
        assert len(set(trained)) == len(trained), (item.key, trained)  # none trained twice
        missing = sorted(set(want) - set(trained))
        if missing and stopped is not None:  # saved by the stopped worker, then it stopped
            by_it = _logged_epochs(stopped, item.key)
            assert missing == [max(by_it, default=0) + 1], (item.key, trained, by_it)
        else:
            assert not missing, (item.key, trained)  # each epoch trained, and logged
    return rows


CASES = [  # (signal, when), on each storage; findings: w12, w13 are ("INT", "mid") and ("TERM",
    # "mid"): the Ctrl-C'd worker hands its item back (rc 130) and the next worker finishes all
    ("INT", "mid"), ("KILL", "mid"), ("TERM", "mid"), ("KILL", "before"), ("INT", "before"),
    ("TERM", "before"), ("KILL", "waiting"), ("INT", "waiting"), ("TERM", "waiting")]


# which (storage, signal, when) cases run where: the default suite one, CI (slow) a few more,
# the whole matrix with DLAB_SOAK=1 (about 45-60 s each on 2 cores)
DEFAULT = {("sqlite", "KILL", "mid")}
CI = {("postgres", "KILL", "mid"), ("sqlite", "INT", "mid"), ("postgres", "TERM", "mid"),
      ("sqlite", "TERM", "waiting"), ("postgres", "KILL", "before")}


def pytest_collection_modifyitems(items):  # called by tests/studies/conftest.py
    for item in items:
        if item.originalname != "test_a_signalled_worker_loses_nothing":
            continue
        case = (item.callspec.params["storage"], item.callspec.params["sig"],
                item.callspec.params["when"])
        if case in CI:
            item.add_marker(pytest.mark.slow)
        elif case not in DEFAULT:
            item.add_marker(pytest.mark.soak)


@pytest.mark.parametrize("sig, when", CASES)
def test_a_signalled_worker_loses_nothing(tmp_path, data_dir, make_tiny_study, storage, sig,
                                          when):
    study_file, plan = _setup(tmp_path, make_tiny_study, storage, ["a"])
    source = next(i for i in plan.runs if i.kind == "train" and i.depends_on is None)
    first = Worker(study_file, storage, tmp_path, data_dir, "first")
    if when == "waiting":  # the second worker has nothing ready while the first trains q1/a
        first.wait_for(rf"start {source.key}")
        victim = Worker(study_file, storage, tmp_path, data_dir, "victim")
        victim.wait_for("waiting: no item is ready")
        survivor = first
    else:
        victim = first
        victim.wait_for(rf"start {source.key}" if when == "before" else rf"epoch 1 of {source.key}")
    victim.proc.send_signal(getattr(signal, f"SIG{sig}"))
    rc = victim.finish()
    assert rc == {"INT": 130, "TERM": 143, "KILL": -9}[sig], victim.text()
    if sig != "KILL" and when != "waiting":
        assert f"handed {source.key} back" in victim.text()
    if when != "waiting":  # the lone survivor: it must take the item back and finish the study
        survivor = Worker(study_file, storage, tmp_path, data_dir, "survivor")
    assert survivor.finish() == 0, survivor.text()
    assert "queue: 3 done" in survivor.text()
    lost = 1 if sig == "KILL" and when != "waiting" else 0
    rows = _check_all_done_once(plan, storage, [w.text() for w in {first, victim, survivor}],
                                stopped=None if when == "waiting" else victim.text())
    assert rows[source.key]["lost"] == lost
    assert rows[source.key]["starts"] == (1 if when == "waiting" else 2)


@pytest.mark.slow
def test_lone_survivor_of_two_finishes_after_its_peer_is_killed(tmp_path, data_dir,
                                                               make_tiny_study, storage):
    """w10: the peer dies mid q1/a; the survivor, busy with q1/b, then waits on nothing but a
    dead worker's item: it must take q1/a back (after --grace) and finish everything."""
    study_file, plan = _setup(tmp_path, make_tiny_study, storage, ["a", "b"])
    source = plan.by_key()[next(i.key for i in plan.runs if i.uses == (("q1", "a"),))]
    peer = Worker(study_file, storage, tmp_path, data_dir, "peer")
    peer.wait_for(rf"start {source.key}")
    survivor = Worker(study_file, storage, tmp_path, data_dir, "survivor")
    peer.wait_for(rf"epoch 1 of {source.key}")
    peer.proc.send_signal(signal.SIGKILL)
    assert peer.finish() == -9
    assert survivor.finish() == 0, survivor.text()
    rows = _check_all_done_once(plan, storage, [peer.text(), survivor.text()],
                                stopped=peer.text())
    assert rows[source.key]["lost"] == 1


def _enqueue(args) -> int:
    from dlab.studies.distributed import enqueue_plan

    study_file, runs, url = args
    return enqueue_plan(plan_study(load_study(study_file), runs), url)[0]


def test_concurrent_enqueues_add_each_item_once(tmp_path, make_tiny_study, storage):
    from dlab.studies.queue import Queue

    name = f"e{abs(hash(str(tmp_path))) % 10**8}"
    study_file = make_tiny_study(tmp_path / "s.toml", name, [f"v{i}" for i in range(8)],
                                 steps=True)
    runs = tmp_path / "runs"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        added = pool.map(_enqueue, [(study_file, runs, storage)] * 4)
    plan = plan_study(load_study(study_file), runs)
    assert sum(added) == len(plan.runs) == 10
    rows = Queue(storage, f"dlab-study:{name}").rows()
    assert sorted(r["key"] for r in rows) == sorted(i.key for i in plan.runs)


@pytest.mark.parametrize("kwargs, expect", [
    ({"heartbeat_s": 0}, "--heartbeat 0"),  # findings: w06
    ({"grace_s": -5}, "--grace -5"),  # findings: w07
    ({"threads": -3}, "--threads -3"),  # findings: w08
    ({"heartbeat_s": 5, "grace_s": 5}, "more than"),
])
def test_bad_worker_options_are_one_line_errors(kwargs, expect):
    from dlab.studies.distributed import WorkerConfig

    with pytest.raises(DlabError, match=re.escape(expect)):
        WorkerConfig("sqlite:///x.db", **kwargs)


def test_status_of_a_never_enqueued_storage_is_one_line(tmp_path, make_tiny_study, capsys):
    """findings: w01 (`dlab study status … --storage sqlite:///never.db`)."""
    from dlab.studies.distributed import trial_counts

    study_file = make_tiny_study(tmp_path / "s.toml", "n", ["a"])
    plan = plan_study(load_study(study_file), tmp_path)
    with pytest.raises(DlabError, match="enqueue"):
        trial_counts(plan, f"sqlite:///{tmp_path / 'never.db'}")
    from dlab.cli import main

    assert main(["study", "status", str(study_file), "--runs-dir", str(tmp_path), "--storage",
                 f"sqlite:///{tmp_path / 'never.db'}"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "dlab study enqueue" in err, err
