"""Where datasets live: the lookup order, and fetching a missing dataset.

Lookup order (SPEC §0): the `--data-dir` flag, the `DLAB_DATA_DIR` variable, the user cache dir
(`$XDG_CACHE_HOME/dlab/data`, default `~/.cache/dlab/data`), the system dataset dir
(`/usr/share/datasets/<name>`, where Debian's `dataset-fashion-mnist` installs Fashion-MNIST),
then a download of the official files into the user cache dir. In each root a dataset is the
folder `<root>/<name>` (the layout of ../shared/data). Must not import torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from dlab.data.sources import DatasetSpec
from dlab.errors import DlabError

SYSTEM_DATASETS = Path("/usr/share/datasets")


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dlab" / "data"


def candidate_roots(data_dir: str | os.PathLike | None) -> list[Path]:
    """The roots searched, in order; an explicit `data_dir` that does not exist is an error."""
    roots = []
    if data_dir is not None:
        if not Path(data_dir).is_dir():
            raise DlabError(f"data dir {str(data_dir)!r} does not exist")
        roots.append(Path(data_dir))
    env = os.environ.get("DLAB_DATA_DIR")
    if env:
        roots.append(Path(env))
    roots += [user_cache_dir(), SYSTEM_DATASETS]
    return roots


def has_dataset(folder: Path, spec: DatasetSpec) -> bool:
    """Whether `folder` holds `spec`'s files in any layout dlab reads."""
    if not folder.is_dir():
        return False
    if spec.kind == "idx":
        from dlab.data.idx import find_idx_file

        return all(find_idx_file(folder, stem) for pair in spec.files.values() for stem in pair)
    from dlab.data.cifar import find_cifar_source

    return find_cifar_source(folder) is not None


def _refuse_incomplete(folder: Path, spec: DatasetSpec) -> None:
    """A folder with some but not all IDX files is an error naming the missing one: silently
    skipping it (or downloading over it) would hide a broken copy."""
    if spec.kind != "idx" or not folder.is_dir():
        return
    from dlab.data.idx import find_idx_file

    stems = [stem for pair in spec.files.values() for stem in pair]
    missing = [stem for stem in stems if find_idx_file(folder, stem) is None]
    if missing and len(missing) < len(stems):
        raise DlabError(f"dataset {spec.name!r} in {str(folder)!r} is incomplete: "
                        f"{missing[0]}(.gz) is missing")


def locate(spec: DatasetSpec, data_dir: str | os.PathLike | None = None,
           download: bool = True) -> Path:
    """The folder holding `spec`'s files, downloading them into the user cache if none does."""
    roots = candidate_roots(data_dir)
    for root in roots:
        for folder in (root / spec.name, root):
            if has_dataset(folder, spec):
                return folder
            _refuse_incomplete(folder, spec)
    if download:
        from dlab.data.download import download_dataset

        return download_dataset(spec, user_cache_dir() / spec.name)
    searched = ", ".join(str(r / spec.name) for r in roots)
    raise DlabError(f"dataset {spec.name!r} not found (searched {searched}); pass --data-dir")
