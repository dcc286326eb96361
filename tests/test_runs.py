"""Run directories: collision-free creation, atomic writes, torn metric lines, locks."""

import json
import multiprocessing as mp
import os

from dlab.errors import DlabError
from dlab.runs import (append_jsonl, atomic_write_json, create_run_dir, is_locked, read_jsonl,
                       run_lock, run_status, truncate_jsonl)


def _claim(args):
    root, stem = args
    return str(create_run_dir(root, stem))


def test_concurrent_processes_never_share_a_run_dir(tmp_path):
    pool = mp.get_context("fork").Pool(4)
    try:
        dirs = pool.map(_claim, [(tmp_path, "same-stem")] * 16)
    finally:  # workers leave on the pool's sentinels, not by SIGTERM (the context's exit)
        pool.close()
        pool.join()
    assert len(set(dirs)) == 16 and all(os.path.isdir(d) for d in dirs)


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "result.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_torn_last_line_is_ignored_and_truncation_keeps_prefix(tmp_path):
    path = tmp_path / "metrics.jsonl"
    for epoch in (1, 2, 3):
        append_jsonl(path, {"epoch": epoch})
    with open(path, "a") as fh:
        fh.write('{"epoch": 4, "lo')  # a crash in mid-write
    assert [r["epoch"] for r in read_jsonl(path)] == [1, 2, 3]
    truncate_jsonl(path, 2)
    assert [r["epoch"] for r in read_jsonl(path)] == [1, 2]


def test_lock_is_exclusive_and_reported(tmp_path):
    assert not is_locked(tmp_path)
    with run_lock(tmp_path):
        assert run_status(tmp_path) == "running"
        pid = os.fork()
        if pid == 0:  # another process must be refused
            try:
                with run_lock(tmp_path):
                    os._exit(1)
            except DlabError:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    assert run_status(tmp_path) == "interrupted"
    atomic_write_json(tmp_path / "result.json", {"status": "diverged"})
    assert run_status(tmp_path) == "diverged"
