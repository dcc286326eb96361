"""Run directories: creation without collisions, atomic writes, manifest, seeding, listing.

A run directory holds `config.json`, `manifest.json`, `metrics.jsonl`, `tb/`, `checkpoints/`,
figures, and `result.json` written last and atomically: its presence means the run is done.
While a process works in a run directory it holds an exclusive lock on `run.lock`, so two
processes never write into the same run. Must not import torch at module level.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from dlab.errors import DlabError
from dlab.results import RESULT, damaged, read_result  # noqa: F401
from dlab.io import (_fsync_dir, append_jsonl, atomic_write_bytes, atomic_write_json,  # noqa: F401
                     read_json, read_jsonl, truncate_jsonl, write_jsonl)

CONFIG = "config.json"
METRICS = "metrics.jsonl"
MANIFEST = "manifest.json"
LOCK = "run.lock"


def default_runs_dir() -> Path:
    """`$DLAB_RUNS_DIR` or `./runs`."""
    return Path(os.environ.get("DLAB_RUNS_DIR") or "runs")


def os_error_line(exc: OSError, folder: Path | None = None) -> str:
    """One line for a failed file operation: the path and the system's reason. An error that
    names no file (a write or close that failed, e.g. on a full disk) names `folder`."""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        reason += " (the disk is full; free space and resume the run)"
    if exc.filename is None and folder is not None:
        return f"cannot write a file in {str(folder)!r}: {reason}"
    where = exc.filename if exc.filename is not None else "a file"
    return f"cannot write {str(where)!r}: {reason}"


@contextlib.contextmanager
def one_line_os_errors(folder: Path | None = None) -> Iterator[None]:
    """Turn an OSError (read-only place, full disk, a file where a folder belongs) into a
    one-line DlabError naming the path (or `folder`, the place being written, when the error
    names none); for the command bodies that write files."""
    try:
        yield
    except OSError as exc:
        raise DlabError(os_error_line(exc, folder)) from None


def create_run_dir(root: Path, stem: str) -> Path:
    """Create a fresh run directory `root/stem` (or `stem-2`, `-3` …); mkdir is the atomic claim."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise DlabError(f"runs dir {str(root)!r} is a file; expected a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
        for n in range(1, 10_000):
            path = root / (stem if n == 1 else f"{stem}-{n}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as exc:
        raise DlabError(f"cannot create a run directory under {str(root)!r}: "
                        f"{exc.strerror or exc}") from None
    raise DlabError(f"could not create a run directory under {str(root)!r}")


def is_unstarted(run_dir: Path) -> bool:
    """Whether `run_dir` holds nothing of a run (it is empty or holds only run.lock)."""
    try:
        return {p.name for p in Path(run_dir).iterdir()} <= {LOCK}
    except OSError:
        return False


def remove_unstarted(run_dir: Path) -> None:
    """Remove a run directory that a refused or failed start left holding no checkpoint:
    config.json, manifest.json, an empty metrics file or tb/ are litter without one."""
    run_dir = Path(run_dir)
    if run_dir.is_dir() and not (run_dir / "checkpoints").exists() \
            and not (run_dir / RESULT).exists():
        shutil.rmtree(run_dir, ignore_errors=True)


def remove_stale_tmp(run_dir: Path) -> list[Path]:
    """Delete the `.<name>.*.tmp` files an atomic write killed mid-way left in the run
    directory and its checkpoints/ (call with the run lock held); returns what was removed."""
    gone = []
    for folder in (Path(run_dir), Path(run_dir) / "checkpoints"):
        for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                gone.append(tmp)
    return gone


def timestamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


@contextlib.contextmanager
def run_lock(run_dir: Path, wait_s: float = 1.0) -> Iterator[None]:
    """Hold the run directory's exclusive lock; another holder makes this a one-line error.

    The lock is an flock, released by the kernel when the process dies, so a killed run can be
    resumed at once. A holder is waited for up to `wait_s` (a status probe holds a shared lock
    for an instant; it must not make a starting run fail with "in use").
    """
    try:
        fh = open(Path(run_dir) / LOCK, "a+")
    except OSError as exc:
        raise DlabError(f"run directory {str(run_dir)!r} cannot be locked: "
                        f"{exc.strerror or exc}") from None
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                fh.close()
                raise DlabError(f"run directory {str(run_dir)!r} is in use by another dlab "
                                "process") from None
            time.sleep(0.05)
    try:
        yield
    finally:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


def is_locked(run_dir: Path) -> bool:
    """Whether some process holds the run directory's lock right now.

    Probes with a shared lock on a read-only descriptor: it never blocks a holder, works in
    read-only runs directories, and a concurrent `run_lock` waits out the instant it is held.
    """
    path = Path(run_dir) / LOCK
    try:
        fh = open(path, "rb")
    except OSError:
        return False
    with fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return False
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return False


def git_sha() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def cpu_flags() -> list[str]:
    """The SIMD flags of this CPU that decide kernel speed and, for some kernels, rounding."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    return [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
            if f in flags]


def manifest(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Versions and provenance written beside each run's config: dlab, python, numpy (and torch
    with its thread count when imported), platform, git sha, command line, CPU flags."""
    import dlab

    info: dict[str, Any] = {
        "dlab": dlab.__version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "git_sha": git_sha(),
        "argv": sys.argv,
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "cpu_flags": cpu_flags(),
        "cpu_count": os.cpu_count(),
    }
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    info.update(extra or {})
    return info


def start_run(run_dir: Path, config: dict[str, Any], extra: dict[str, Any] | None = None
              ) -> None:
    """Write a new run's `config.json` and `manifest.json` (atomically, config first)."""
    atomic_write_json(Path(run_dir) / CONFIG, config)
    atomic_write_json(Path(run_dir) / MANIFEST, manifest(extra))


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and (when imported) torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def _json_problem(path: Path, lines: bool = False) -> str | None:
    """Why the JSON (or JSONL) file `path` cannot be read; None when it can or is absent.

    A JSONL file's torn last line (a crash mid-append) is not damage: readers skip it.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        return str(getattr(exc, "strerror", None) or exc)
    if not lines:
        if not text.strip():
            return "empty file"
        try:
            data = json.loads(text)
        except ValueError:
            return "not valid JSON"
        return None if isinstance(data, dict) else "not a JSON object"
    for n, line in enumerate(text.splitlines(keepends=True), 1):
        if not line.endswith("\n"):
            break
        try:
            row = json.loads(line)
        except ValueError:
            return f"line {n} is not valid JSON"
        if not isinstance(row, dict):
            return f"line {n} is not a JSON object"
    return None


def check_run(run_dir: Path) -> dict[str, Any] | None:
    """A "damaged" result (`dlab.results.damaged`) naming the first file of the run that cannot
    be read — config.json, result.json, metrics.jsonl, a checkpoint's JSON — else None.

    Reads only: works in read-only runs directories. Checkpoint weights are verified (SHA-256)
    when they are loaded, not here.
    """
    run_dir = Path(run_dir)
    result = read_result(run_dir)
    if result is not None and result["status"] == "damaged":
        return result
    checks = [(run_dir / CONFIG, False), (run_dir / METRICS, True)]
    checks += [(run_dir / "checkpoints" / f"{name}.json", False) for name in ("last", "best")]
    for path, lines in checks:
        problem = _json_problem(path, lines)
        if problem is None and not lines and path.parent.name == "checkpoints" \
                and path.exists() and not isinstance(read_json(path).get("weights"), str):
            problem = "names no weights file"
        if problem is not None:
            return damaged(path, problem)
    return None


def run_status(run_dir: Path) -> str:
    """'damaged' when a file of the run cannot be read (`check_run`), else result.json's status
    ('finished', 'diverged', 'pruned', 'failed'), else 'running' (locked) or 'interrupted'."""
    if check_run(run_dir) is not None:
        return "damaged"
    result = read_result(run_dir)
    if result is not None:
        return result["status"]
    return "running" if is_locked(run_dir) else "interrupted"


def list_runs(root: Path) -> list[Path]:
    """Run directories (those with a config.json) under `root`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [p.parent for p in root.glob(f"**/{CONFIG}")]

    def mtime(run: Path) -> float:
        try:
            return (run / CONFIG).stat().st_mtime
        except OSError:  # removed while listing
            return 0.0

    return sorted(runs, key=mtime)
