"""What an experiment returns: numbers, a verdict on its phenomenon, and figure data.

An experiment's `compute` step returns an `ExperimentResult`; drawing (`dlab.analysis.plots`)
and writing (`dlab.analysis.runner`) only read it. Everything in it is JSON-serializable: plain
floats, ints, strings, lists and dicts. Must not import torch or matplotlib.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class VerdictResult:
    """Whether the expected phenomenon showed, with the measured values it was judged on."""

    passed: bool
    claim: str  # the phenomenon, in words
    measured: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "claim": self.claim, "measured": clean(self.measured)}


@dataclass(frozen=True)
class FigureSpec:
    """One figure to draw: its file stem, the plot kind (a function in plots.py), its data."""

    stem: str
    kind: str
    title: str
    data: dict[str, Any]


@dataclass(frozen=True)
class ExperimentResult:
    """The outcome of one experiment: summary numbers, verdict, figures and a markdown body."""

    numbers: dict[str, Any]
    verdict: VerdictResult
    figures: tuple[FigureSpec, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"numbers": clean(self.numbers),
                "verdict": self.verdict.to_dict(), "notes": list(self.notes),
                "figures": [f.stem for f in self.figures]}


def clean(obj: Any) -> Any:
    """Make numbers JSON-safe: tensors/arrays to lists, numpy scalars to Python, NaN/inf to None."""
    if hasattr(obj, "tolist"):
        obj = obj.tolist()
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    raise TypeError(f"not JSON-serializable: {type(obj).__name__}")
