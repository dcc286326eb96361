"""Declarative sizes for analysis experiments: each field states its own bounds.

An experiment's config is a frozen dataclass whose fields are built with these helpers; the
bound lives in the field's metadata and `check_sizes` enforces it, so a value is judged by what
the field declares, never by its name (a `momentum = 0.0` is fine when the field says >= 0).
Tuple fields are checked element by element. The fields every image experiment repeats
(dataset, slices, epochs, lr, seed) are in `ImageSizes`; those of the 1-D function experiments
in `FunctionSizes`; a subclass redefines a field to change its default. Must not import torch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from dlab.config import ACTIVATIONS
from dlab.data.sources import DATASETS
from dlab.errors import DlabError


def positive(default: Any) -> Any:
    """A size, count or rate that must be > 0."""
    return dataclasses.field(default=default, metadata={"above": 0})


def at_least(default: Any, minimum: float) -> Any:
    """A value that must be >= `minimum`."""
    return dataclasses.field(default=default, metadata={"min": minimum})


def limit(default: int) -> Any:
    """A slice of a dataset split: the first N examples, 0 = all."""
    return dataclasses.field(default=default, metadata={"min": 0, "note": "0 = all"})


def fraction(default: float) -> Any:
    """A share or probability in [0, 1]."""
    return dataclasses.field(default=default, metadata={"min": 0, "max": 1})


def seed(default: int = 0) -> Any:
    return dataclasses.field(default=default, metadata={"min": 0})


def one_of(default: str, choices) -> Any:
    """A name from `choices` (e.g. a dataset or an activation)."""
    return dataclasses.field(default=default, metadata={"choices": tuple(choices)})


def sizes(default: tuple, minimum: float | None = None, above: float | None = None) -> Any:
    """A tuple of values, each >= `minimum` or > `above`."""
    meta = {"min": minimum} if minimum is not None else {"above": above}
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class ImageSizes:
    """What every image experiment has: dataset, train/test slices, epochs, lr, seed."""

    dataset: str = one_of("mnist", DATASETS)
    train_limit: int = limit(5000)
    test_limit: int = limit(2000)
    epochs: int = positive(5)
    lr: float = positive(1e-3)
    seed: int = seed()


@dataclass(frozen=True)
class FunctionSizes:
    """What every 1-D function experiment has: the points in [-1, 1], lr, activation, seed."""

    points: int = at_least(300, 2)
    lr: float = positive(1e-2)
    activation: str = one_of("tanh", ACTIVATIONS)
    seed: int = seed()


def _problem(value: Any, meta: dict[str, Any]) -> str | None:
    """What `value` breaks of the field's bounds `meta`, as "expected ...", or None."""
    if "choices" in meta:
        return None if value in meta["choices"] else \
            "expected one of: " + ", ".join(meta["choices"])
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "expected a finite number"
    if "above" in meta and meta["above"] is not None and not value > meta["above"]:
        return "expected a positive value" if meta["above"] == 0 else f"expected > {meta['above']}"
    lo, hi = meta.get("min"), meta.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            return f"expected a value in [{lo}, {hi}]"
        return f"expected >= {lo}" + (f" ({meta['note']})" if "note" in meta else "")
    return None


def check_sizes(cfg: Any, where: str) -> None:
    """Every field's declared bounds, then the config's own `validate()`; one-line errors."""
    for f in dataclasses.fields(cfg):
        if not f.metadata:
            continue
        value = getattr(cfg, f.name)
        for v in value if isinstance(value, tuple) else (value,):
            problem = _problem(v, f.metadata)
            if problem:
                raise DlabError(f"{where}.{f.name} = {value!r}; {problem}")
    own = getattr(cfg, "validate", None)
    if own is not None:
        own()


def require(ok: bool, message: str) -> None:
    """Raise a one-line DlabError unless `ok` (for the configs' own `validate` methods)."""
    if not ok:
        raise DlabError(message)
