"""Fixtures for the studies tests: tiny study files: small slices of real data, tiny nets, 1-2 epochs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

TINY_BASE = """
[base]
data.train_limit = 512
data.val_limit = 256
model.width = 0.5
train.epochs = {epochs}
train.batch_size = 128
"""


def tiny_study(path: Path, name: str, labels: list[str], epochs: int = 2,
               steps: bool = False) -> Path:
    """A study with one question of train variants differing in lr (label -> lr), plus steps."""
    text = f'name = "{name}"\n' + TINY_BASE.format(epochs=epochs)
    text += '[[questions]]\nkey = "q1"\ntitle = "lr"\n'
    for i, label in enumerate(labels):
        text += (f'[[questions.variants]]\nlabel = "{label}"\n'
                 f'set = {{ "optim.lr" = {0.01 + 0.005 * i} }}\n')
    if steps:
        text += ('[[questions]]\nkey = "q2"\ntitle = "transfer"\n'
                 f'[[questions.variants]]\nlabel = "eval"\nkind = "eval"\n'
                 f'source = "q1/{labels[0]}"\ndataset = "mnist"\n'
                 f'[[questions.variants]]\nlabel = "ft"\nkind = "finetune"\n'
                 f'source = "q1/{labels[0]}"\ndataset = "mnist"\nlr_factor = 0.5\n'
                 'set = { "train.epochs" = 1 }\n')
    path.write_text(text)
    return path


def tree_checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder` (relative path -> digest), lock file excluded."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != "run.lock":
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def make_tiny_study():
    return tiny_study


@pytest.fixture
def checksums():
    return tree_checksums


def pytest_collection_modifyitems(config, items):
    """Per-case marks of the distributed fault matrix (see test_distributed_faults.py)."""
    import test_distributed_faults

    test_distributed_faults.pytest_collection_modifyitems(items)
