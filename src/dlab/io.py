"""Atomic file writes and JSON / JSONL helpers: the leaf every package writes files through.

Readers see the old file or the whole new one, never part of it: data is written to a temporary
file in the same folder, fsync'd, renamed over the target, and the folder is fsync'd. Imports
nothing of dlab but `dlab.errors`; must not import torch or numpy.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:  # name the file being written, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would make results private to one user
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:  # a failed write names no file
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> Any:
    with open(path) as fh:
        return json.load(fh)


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """Append one JSON line and flush it to disk (a crash loses at most the line being written)."""
    with open(path, "a") as fh:
        fh.write(json.dumps(row, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All complete lines of a JSONL file; a torn last line (from a crash) is ignored."""
    rows = []
    if not Path(path).exists():
        return rows
    with open(path) as fh:
        for line in fh:
            if not line.endswith("\n"):
                break
            rows.append(json.loads(line))
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Replace `path` atomically with these rows, one JSON line each."""
    atomic_write_bytes(Path(path), "".join(json.dumps(r, sort_keys=True) + "\n"
                                           for r in rows).encode())


def truncate_jsonl(path: Path, keep: int) -> None:
    """Keep only the first `keep` complete rows (used when resuming from an earlier checkpoint)."""
    write_jsonl(path, read_jsonl(path)[:keep])
