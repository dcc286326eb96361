"""`dlab datasets` (where each dataset was found, and its size) and `dlab fetch NAME`."""

from __future__ import annotations

import argparse
import sys

from dlab.cli.common import add_data_dir


def register(subparsers) -> None:
    p = subparsers.add_parser("datasets", help="list the datasets, where each was found, sizes")
    add_data_dir(p)
    p.set_defaults(func=cmd_datasets)
    p = subparsers.add_parser("fetch", help="make sure a dataset is present (download if "
                                            "needed), verify it, print its folder")
    p.add_argument("name", help="dataset name (see `dlab datasets`)")
    add_data_dir(p)
    p.set_defaults(func=cmd_fetch)


def cmd_datasets(args: argparse.Namespace) -> int:
    from dlab.data import DATASETS
    from dlab.data.formats import get_format
    from dlab.data.store import candidate_roots, locate
    from dlab.errors import DlabError

    candidate_roots(args.data_dir)  # a --data-dir that does not exist is an error, not "not found"
    for name, spec in DATASETS.items():
        try:
            folder = locate(spec, args.data_dir, download=False)
        except DlabError:
            print(f"{name:<14} not found")
            continue
        files = get_format(spec.kind).files(folder, spec)
        size_mb = sum(f.stat().st_size for f in files) / 1e6
        detail = f", {files[0].name}" if len(files) == 1 else ""
        print(f"{name:<14} {folder}  ({size_mb:.1f} MB in {len(files)} files{detail})")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from dlab.data import get_spec, load_folder
    from dlab.data.store import locate

    spec = get_spec(args.name)
    folder = locate(spec, args.data_dir, download=True)
    # Loading both splits verifies the checksums (IDX) and fills the decoded cache (the others).
    sizes = {split: len(load_folder(spec, folder, split)) for split in ("train", "test")}
    print(f"dlab: {spec.name}: {sizes['train']} train / {sizes['test']} test images",
          file=sys.stderr)
    print(folder)
    return 0
