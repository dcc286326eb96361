"""Download one file from a list of mirrors, verify its checksum, and only then move it in place.

`fetch_file` tries each mirror in turn: a mirror that does not answer, answers with an error,
sends a truncated body or a file with the wrong checksum is skipped for the next one; the error
raised when every mirror failed lists what each one did. The body is streamed into a hidden
temporary file in the destination folder and renamed only after it verified, so a folder never
holds a partial or wrong file under the real name. Uses urllib with a timeout; progress goes to
stderr. Which files make up a dataset is the business of its format (`dlab.data.formats`).
Imports only `dlab.data.sources` and `dlab.errors` of dlab; must not import numpy or torch.
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

_CHUNK = 1 << 16
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, TimeoutError,
                   ConnectionError)
_ALGOS = {32: "md5", 64: "sha256"}  # by the length of the hex digest


def fetch_file(spec: DatasetSpec, urls: list[str] | tuple[str, ...], filename: str, dest: Path,
               expected: str, timeout_s: float, gunzip: bool = False) -> str:
    """Download `filename` from the first mirror that serves it intact into `dest`.

    Args:
        urls: mirror base URLs, tried in order.
        expected: the hex MD5 or SHA-256 of the file (of its uncompressed content when `gunzip`).
    Returns:
        The base URL that served the verified file.
    Raises:
        DlabError: when no mirror served a verified file (a checksum mismatch names the file,
            the expected and the actual digest).
    """
    algo = _ALGOS.get(len(expected))
    if algo is None:
        raise DlabError(f"checksum {expected!r} of {filename} in dataset {spec.name!r}; expected "
                        "32 (md5) or 64 (sha256) hex digits")
    failures, mismatch = [], False
    for base in urls:
        url = base.rstrip("/") + "/" + filename
        fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{filename}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                _stream(url, out, timeout_s)
            actual = _digest(Path(tmp), algo, gunzip)
            if actual == expected:
                os.replace(tmp, dest / filename)
                return base
            mismatch = True
            failures.append(f"{url}: wrong {algo} checksum: expected {expected}, got {actual}")
        except _NETWORK_ERRORS as exc:
            failures.append(f"{url}: {_reason(exc)}")
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    if mismatch:
        raise DlabError(f"downloaded file {filename} failed verification and was not kept "
                        f"({'; '.join(failures)})")
    raise DlabError(not_found_message(spec, failures))


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


def not_found_message(spec: DatasetSpec, failures: list[str]) -> str:
    """The one-line error for a dataset found nowhere and not downloadable."""
    hint = (f"pass --data-dir (or set DLAB_DATA_DIR) to a folder holding {spec.name}/ with the "
            "official files")
    if spec.install_hint:
        hint += f"; or {spec.install_hint}"
    tried = "; ".join(failures) or "no download URL known"
    return (f"dataset {spec.name!r} was not found locally and the download failed ({tried}); "
            f"{hint}")
