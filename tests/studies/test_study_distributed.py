"""Distributed workers on a real PostgreSQL server: every variant trained exactly once, and a
killed worker's variant is retried (resuming from its checkpoint), none lost.

The server is a throwaway cluster (initdb into a temp dir, pg_ctl on 127.0.0.1 and a free port),
run as the `postgres` user when the tests run as root. Skipped only when the PostgreSQL server
binaries are absent (Debian: `apt-get install -y postgresql`).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from dlab.runs import read_jsonl, read_result
from dlab.studies import load_study, plan_study

DLAB = str(Path(sys.executable).parent / "dlab")


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or (
        [shutil.which("initdb")] if shutil.which("initdb") else [])
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    pytest.importorskip("psycopg2", reason="psycopg2-binary is not installed")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: "
                    "apt-get install -y postgresql")
    folder = Path(tempfile.mkdtemp(prefix="dlab-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        user = "postgres" if _has_user("postgres") else "nobody"
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        prefix = ["runuser", "-u", user, "--"]
    data, port = folder / "data", _free_port()
    subprocess.run(prefix + [str(bindir / "initdb"), "-D", str(data), "-A", "trust",
                             "-U", "postgres", "--no-sync"], check=True, capture_output=True)
    subprocess.run(prefix + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"),
                             "-w", "-o", f"-p {port} -h 127.0.0.1 -k {folder} -F", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(prefix + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                 "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _queue_rows(url: str, name: str) -> list[dict]:
    from dlab.studies.queue import Queue

    return Queue(url, f"dlab-study:{name}").rows()


@pytest.mark.slow  # ~60 s on a quiet 2-core box (3 worker processes), ~3 min when shared
def test_three_workers_train_each_variant_once_and_retry_a_killed_one(
        tmp_path, data_dir, postgres_url, make_tiny_study):
    from dlab.studies.distributed import enqueue_plan

    labels = [f"v{i}" for i in range(12)]
    study_file = make_tiny_study(tmp_path / "dist.toml", "dist", labels, epochs=4)
    runs = tmp_path / "runs"
    plan = plan_study(load_study(study_file), runs)
    assert len(plan.runs) == 12
    assert enqueue_plan(plan, postgres_url) == (12, 0)
    assert enqueue_plan(plan, postgres_url) == (0, 12)  # each grid point enqueued once
    cmd = [DLAB, "study", "work", str(study_file), "--storage", postgres_url, "--runs-dir",
           str(runs), "--data-dir", str(data_dir), "--threads", "1", "--heartbeat", "1",
           "--grace", "4", "--poll", "0.3"]
    workers = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(3)]
    pids = {w.pid: w for w in workers}
    victim, killed_key, deadline = None, None, time.monotonic() + 300
    by_key = plan.by_key()
    while victim is None:  # kill a worker once it has trained >= 1 epoch of an unfinished run
        assert time.monotonic() < deadline, "no worker got to kill"
        for row in _queue_rows(postgres_url, "dist"):
            if row["state"] != "running":
                continue
            pid = int(row["worker"].rsplit(":", 1)[1])
            item = by_key[row["key"]]
            if pid in pids and read_result(item.run_dir) is None and \
                    len(read_jsonl(item.run_dir / "metrics.jsonl")) >= 1:
                victim, killed_key = pids[pid], item.key
                victim.send_signal(signal.SIGKILL)
                break
        time.sleep(0.05)
    victim.wait()
    for w in workers:
        if w is not victim:
            out, _ = w.communicate(timeout=400)
            assert w.returncode == 0, out
    rows = {r["key"]: r for r in _queue_rows(postgres_url, "dist")}
    assert set(rows) == {r.key for r in plan.runs}
    for key, row in rows.items():
        assert row["state"] == "done" and row["status"] == "finished", row
    assert rows[killed_key]["lost"] == 1 and rows[killed_key]["starts"] == 2  # retried once
    assert sum(r["starts"] for r in rows.values()) == 13  # no other item started twice
    for item in plan.runs:
        assert read_result(item.run_dir)["status"] == "finished"
        epochs = [row["epoch"] for row in read_jsonl(item.run_dir / "metrics.jsonl")]
        assert epochs == [1, 2, 3, 4], (item.key, epochs)  # resumed, not restarted
