"""Small statistics used by the verdicts (no scipy at run time). Must not import torch."""

from __future__ import annotations

import numpy as np


def ranks(values) -> np.ndarray:
    """Ranks 0..n-1 with ties given their average rank."""
    v = np.asarray(values, dtype=float)
    order = np.argsort(v, kind="stable")
    r = np.empty(len(v))
    r[order] = np.arange(len(v))
    for value in np.unique(v):
        tie = v == value
        r[tie] = r[tie].mean()
    return r


def spearman(a, b) -> float:
    """Spearman rank correlation of two equal-length sequences (nan when one is constant)."""
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])
