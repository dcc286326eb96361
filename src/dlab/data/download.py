"""Download a dataset's official files, verify their checksums, and only then move them in place.

IDX datasets: the four `<name>.gz` files from the first of `spec.urls` that answers, each
verified by the SHA-256 of its *uncompressed* content (`spec.sha256`; the gzip wrapper differs
between mirrors). CIFAR-10: the official binary tarball, verified by its MD5 (`spec.archives`).
Each file is streamed into a hidden temporary file in the destination folder and renamed only
after it verified, so a folder never holds a partial or wrong file under the real name; a
mismatch deletes the temporary file. Uses urllib with a timeout; progress goes to stderr.
Must not import torch.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from dlab.data.sources import DatasetSpec
from dlab.errors import DlabError

CIFAR_ARCHIVE = "cifar-10-binary.tar.gz"
_CHUNK = 1 << 16
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, TimeoutError,
                   ConnectionError)


def download_dataset(spec: DatasetSpec, dest: Path, timeout_s: float = 30.0) -> Path:
    """Download `spec`'s official files into `dest` (files already there are kept); return `dest`.

    Raises:
        DlabError: on a checksum mismatch (naming the file, expected and actual digest) or when
            no URL could be reached (saying what to do instead).
    """
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DlabError(f"cannot create the download folder {str(dest)!r} ({exc.strerror}); "
                        "pass --data-dir to a folder holding the dataset") from None
    if spec.kind == "idx":
        from dlab.data.idx import find_idx_file

        urls = list(spec.urls)
        for stem in (stem for pair in spec.files.values() for stem in pair):
            if find_idx_file(dest, stem) is None:
                used = _fetch(spec, urls, f"{stem}.gz", dest, "sha256", spec.sha256[stem],
                              timeout_s, gunzip=True)
                # The mirror that answered goes first for the remaining files.
                urls.remove(used)
                urls.insert(0, used)
    elif not (dest / CIFAR_ARCHIVE).is_file():
        _fetch(spec, spec.urls, CIFAR_ARCHIVE, dest, "md5", spec.archives[CIFAR_ARCHIVE],
               timeout_s)
    return dest


def _fetch(spec: DatasetSpec, urls: list[str] | tuple[str, ...], filename: str, dest: Path,
           algo: str, expected: str, timeout_s: float, gunzip: bool = False) -> str:
    """Try each base URL in turn; verify and rename the first complete download; return its base."""
    failures = []
    for base in urls:
        url = base.rstrip("/") + "/" + filename
        fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{filename}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                _stream(url, out, timeout_s)
            actual = _digest(Path(tmp), algo, gunzip)
            if actual != expected:
                raise DlabError(f"downloaded file {filename} (from {url}) has the wrong {algo} "
                                f"checksum: expected {expected}, got {actual}; it was not kept")
            os.replace(tmp, dest / filename)
            return base
        except _NETWORK_ERRORS as exc:
            failures.append(f"{url}: {_reason(exc)}")
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    raise DlabError(_not_found_message(spec, failures))


def _stream(url: str, out, timeout_s: float) -> None:
    """Copy the body at `url` into the open file `out`, with progress on stderr."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        total = int(response.headers.get("Content-Length") or 0)
        done, shown = 0, -1
        print(f"dlab: downloading {url}", file=sys.stderr, flush=True)
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            done += len(chunk)
            percent = done * 100 // total if total else -1
            if percent // 10 != shown // 10 and sys.stderr.isatty():
                print(f"\r  {done / 1e6:.1f} MB ({percent}%)", end="", file=sys.stderr, flush=True)
                shown = percent
        if total and done != total:
            raise http.client.IncompleteRead(b"", total - done)
        if sys.stderr.isatty():
            print(file=sys.stderr)


def _digest(path: Path, algo: str, gunzip: bool) -> str:
    """Hex digest of the file (of its uncompressed content when `gunzip`)."""
    h = hashlib.new(algo)
    try:
        with (gzip.open(path, "rb") if gunzip else open(path, "rb")) as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    except (EOFError, OSError, zlib.error) as exc:
        return f"unreadable ({type(exc).__name__})"
    return h.hexdigest()


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    return " ".join(str(reason).split()) or type(exc).__name__


def _not_found_message(spec: DatasetSpec, failures: list[str]) -> str:
    hint = (f"pass --data-dir (or set DLAB_DATA_DIR) to a folder holding {spec.name}/ with the "
            "official files")
    if spec.name == "fashion-mnist":
        hint += ("; or run `apt-get install dataset-fashion-mnist`, which installs it into "
                 "/usr/share/datasets/fashion-mnist")
    tried = "; ".join(failures) or "no download URL known"
    return (f"dataset {spec.name!r} was not found locally and the download failed ({tried}); "
            f"{hint}")
