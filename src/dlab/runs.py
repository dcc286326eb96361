"""Run directories: creation without collisions, atomic writes, manifest, seeding, listing.

A run directory holds `config.json`, `manifest.json`, `metrics.jsonl`, `tb/`, `checkpoints/`,
figures, and `result.json` written last and atomically: its presence means the run is done.
While a process works in a run directory it holds an exclusive lock on `run.lock`, so two
processes never write into the same run. Must not import torch at module level.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import platform
import random
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from dlab.errors import DlabError
from dlab.io import (_fsync_dir, append_jsonl, atomic_write_bytes, atomic_write_json,  # noqa: F401
                     read_json, read_jsonl, truncate_jsonl, write_jsonl)

RESULT = "result.json"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
MANIFEST = "manifest.json"
LOCK = "run.lock"


def default_runs_dir() -> Path:
    """`$DLAB_RUNS_DIR` or `./runs`."""
    return Path(os.environ.get("DLAB_RUNS_DIR") or "runs")


def create_run_dir(root: Path, stem: str) -> Path:
    """Create a fresh run directory `root/stem` (or `stem-2`, `-3` …); mkdir is the atomic claim."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = root / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise DlabError(f"could not create a run directory under {str(root)!r}")


def timestamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run directory's exclusive lock; another holder makes this a one-line error.

    The lock is an flock, released by the kernel when the process dies, so a killed run can be
    resumed at once.
    """
    fh = open(Path(run_dir) / LOCK, "a+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise DlabError(f"run directory {str(run_dir)!r} is in use by another dlab process") from None
    try:
        yield
    finally:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


def is_locked(run_dir: Path) -> bool:
    """Whether some process holds the run directory's lock right now."""
    path = Path(run_dir) / LOCK
    if not path.exists():
        return False
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return False


def git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def manifest(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Versions and provenance written beside each run's config."""
    import dlab

    info: dict[str, Any] = {
        "dlab": dlab.__version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "git_sha": git_sha(),
        "argv": sys.argv,
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
    }
    if "torch" in sys.modules:
        info["torch"] = sys.modules["torch"].__version__
    info.update(extra or {})
    return info


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and (when imported) torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def read_result(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / RESULT
    return read_json(path) if path.exists() else None


def run_status(run_dir: Path) -> str:
    """'finished' / 'diverged' (from result.json), 'running' (locked), else 'interrupted'."""
    result = read_result(run_dir)
    if result is not None:
        return result.get("status", "finished")
    return "running" if is_locked(run_dir) else "interrupted"


def list_runs(root: Path) -> list[Path]:
    """Run directories (those with a config.json) under `root`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [p.parent for p in root.glob(f"**/{CONFIG}")]
    return sorted(runs, key=lambda p: (p / CONFIG).stat().st_mtime)
