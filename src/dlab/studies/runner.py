"""The child process of the local pool: one work item, run in a process of its own.

The pool starts children from a fork server that has already imported torch, the engine and
matplotlib (`dlab.studies.warm`), so an item's process starts in milliseconds instead of paying
those imports again. `run_in_child(job, log_path)` sends stdout/stderr to the item's log, asks
the kernel to kill it when its parent dies, sets torch's thread count and runs the item. `job` is
{"item": PlannedRun.to_json(), "data_dir", "device", "threads"}. Exit status: 0 done, 2
DlabError (one line on stderr), 130 interrupted, 1 anything else (traceback on stderr).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
import time
from typing import Any

from dlab.errors import DlabError

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent (the fork server, or for the
    fork server the pool) dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass  # not Linux/glibc: the run lock still protects run directories


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def run_in_child(job: dict[str, Any], log_path: str) -> None:
    """The child's whole life: exits with the status described in the module doc."""
    start = time.perf_counter()
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    _die_with_parent()
    # the pool forwards Ctrl-C as SIGINT; SIGTERM stops the item the same way
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    sys.exit(_run(job, start))


def _run(job: dict[str, Any], start: float) -> int:
    try:
        import torch

        if job.get("threads"):
            torch.set_num_threads(int(job["threads"]))
        from dlab.studies.execute import execute_item
        from dlab.studies.plan import PlannedRun

        item = PlannedRun.from_json(job["item"])
        result = execute_item(item, data_dir=job.get("data_dir"), device=job.get("device", "auto"))
    except DlabError as exc:
        print(f"dlab: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("dlab: interrupted", file=sys.stderr, flush=True)
        return 130
    print(json.dumps(result, sort_keys=True))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # CPU seconds of the whole item (data, training, figures): on a shared machine the wall
    # time says little, the CPU time is what the item would take alone on one core
    print(json.dumps({"cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
                      "wall_s": round(time.perf_counter() - start, 2)}), flush=True)
    return 0
