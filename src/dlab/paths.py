"""Per-user folders of dlab (the cache for decoded data and built kernels). A leaf module."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """`$XDG_CACHE_HOME/dlab`, default `~/.cache/dlab`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dlab"
