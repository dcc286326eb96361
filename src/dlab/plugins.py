"""Discovery of plug-ins: the modules of a package that define a registry entry.

Tasks (`dlab.tasks`), architectures (`dlab.models`) and analysis experiments are found this way,
so adding one is adding one module. Imports nothing of dlab but `dlab.errors`.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Iterable

from dlab.errors import DlabError


def discover(package: str, path: Iterable[str], attr: str, kind: type,
             first: str = "") -> dict[str, Any]:
    """name -> entry for every module of `package` (at `path`) whose `attr` is a `kind`;
    modules in name order, `first` before the others."""
    found: dict[str, Any] = {}
    names = sorted((m.name for m in pkgutil.iter_modules(list(path))),
                   key=lambda n: (n != first, n))
    for name in names:
        entry = getattr(importlib.import_module(f"{package}.{name}"), attr, None)
        if isinstance(entry, kind):
            found[entry.name] = entry
    return found


def lookup(registry: dict[str, Any], name: str, what: str) -> Any:
    """`registry[name]`; an unknown name is a one-line error listing the known ones."""
    if name not in registry:
        raise DlabError(f"unknown {what} {name!r}; expected one of: " + ", ".join(registry))
    return registry[name]
