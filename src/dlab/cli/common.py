"""Argument helpers shared by the command modules (no commands of its own)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlab.runs import default_runs_dir


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="folder holding <dataset>/ folders (default: $DLAB_DATA_DIR, the "
                             "user cache, /usr/share/datasets, then download)")


def add_runs_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs-dir", type=Path, default=None,
                        help="where run directories go (default: $DLAB_RUNS_DIR or ./runs)")


def runs_dir(args: argparse.Namespace) -> Path:
    return args.runs_dir or default_runs_dir()


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto: CUDA when available, else CPU")
