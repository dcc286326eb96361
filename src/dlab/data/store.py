"""Where datasets live: the lookup order, and fetching a missing dataset.

Lookup order (SPEC §0): the `--data-dir` flag, the `DLAB_DATA_DIR` variable, the user data dir
(`<dlab cache root>/data`, default `~/.cache/dlab/data`), the system dataset dir
(`/usr/share/datasets/<name>`, where Debian's `dataset-fashion-mnist` installs Fashion-MNIST),
then a download of the official files into the user data dir. In each root a dataset is the
folder `<root>/<name>` (the layout of ../shared/data) or the root itself. What counts as
"present" and what a download fetches is the dataset's format (`dlab.data.formats`); nothing
here depends on a particular dataset or format. Must not import torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from dlab.data.download import not_found_message
from dlab.data.formats import get_format
from dlab.data.sources import DatasetSpec
from dlab.errors import DlabError
from dlab.paths import cache_root

SYSTEM_DATASETS = Path("/usr/share/datasets")


def user_data_dir() -> Path:
    """Where downloads go: `<dlab cache root>/data`."""
    return cache_root() / "data"


def candidate_roots(data_dir: str | os.PathLike | None) -> list[Path]:
    """The roots searched, in order; an explicit `data_dir` that is not a folder is an error."""
    roots = []
    if data_dir is not None:
        if not Path(data_dir).is_dir():
            raise DlabError(f"data dir {str(data_dir)!r} does not exist")
        roots.append(Path(data_dir))
    env = os.environ.get("DLAB_DATA_DIR")
    if env:
        roots.append(Path(env))
    roots += [user_data_dir(), SYSTEM_DATASETS]
    return roots


def has_dataset(folder: Path, spec: DatasetSpec) -> bool:
    """Whether `folder` holds `spec`'s files in any layout its format reads."""
    return folder.is_dir() and get_format(spec.kind).present(folder, spec)


def locate(spec: DatasetSpec, data_dir: str | os.PathLike | None = None,
           download: bool = True) -> Path:
    """The folder holding `spec`'s files, downloading them into the user data dir if none does."""
    fmt = get_format(spec.kind)
    roots = candidate_roots(data_dir)
    for root in roots:
        for folder in (root / spec.name, root):
            if has_dataset(folder, spec):
                return folder
            if folder.is_dir():
                fmt.refuse_incomplete(folder, spec)
    if download:
        return download_dataset(spec, user_data_dir() / spec.name)
    searched = ", ".join(str(r / spec.name) for r in roots)
    raise DlabError(f"dataset {spec.name!r} not found (searched {searched}); pass --data-dir")


def download_dataset(spec: DatasetSpec, dest: Path, timeout_s: float = 30.0) -> Path:
    """Download `spec`'s official files into `dest` (files already there are kept); return `dest`.

    Raises:
        DlabError: when a file fails its checksum on every mirror (naming the file, expected
            and actual digest), or no mirror could be reached (saying what to do instead).
    """
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DlabError(f"cannot create the download folder {str(dest)!r} ({exc.strerror}); "
                        "pass --data-dir to a folder holding the dataset") from None
    get_format(spec.kind).download(spec, dest, timeout_s)
    if not has_dataset(dest, spec):
        raise DlabError(not_found_message(spec, []))
    return dest
