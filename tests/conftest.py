"""Shared fixtures: the real datasets beside the checkout, temporary run roots, slow-test gating."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

import dlab  # noqa: F401  (sets MKL's strict mode before any test module's first matrix product)

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """`$DLAB_TEST_DATA_DIR`, else ../shared/data beside the checkout."""
    env = os.environ.get("DLAB_TEST_DATA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if not (path / "mnist").is_dir():
        pytest.fail(f"real datasets not found at {path}; set DLAB_TEST_DATA_DIR")
    return path


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """Keep every test away from the user's cache and run folders."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("DLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("DLAB_DATA_DIR", raising=False)


@pytest.fixture(autouse=True)
def _restored_signal_handlers():
    """A test that runs a CLI command in-process may install its SIGINT/SIGTERM handlers
    (`dlab study run` stops cleanly on SIGTERM); put pytest's back, so that a later test's
    forked children (a fork Pool's workers, which `terminate()` with SIGTERM) do not inherit
    them and hang (seen in CI)."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        if handler is not None:
            signal.signal(sig, handler)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """slow: run with DLAB_SLOW=1 (CI does); soak: the long fault matrices, DLAB_SOAK=1 only."""
    markexpr = config.option.markexpr or ""
    slow = os.environ.get("DLAB_SLOW") == "1" or "slow" in markexpr
    soak = os.environ.get("DLAB_SOAK") == "1" or "soak" in markexpr
    for item in items:
        if "soak" in item.keywords and not soak:
            item.add_marker(pytest.mark.skip(reason="soak test: set DLAB_SOAK=1 or use -m soak"))
        elif "slow" in item.keywords and not slow:
            item.add_marker(pytest.mark.skip(reason="slow test: set DLAB_SLOW=1 or use -m slow"))
