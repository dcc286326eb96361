"""Fréchet distance, KID and class coverage between two sets of features (numpy, float64).

FD(μ1, Σ1; μ2, Σ2) = |μ1 − μ2|² + tr Σ1 + tr Σ2 − 2 tr √(Σ1 Σ2), with tr √(Σ1 Σ2) computed as
Σ √max(λ, 0) over the eigenvalues λ of the *symmetric* Σ1^½ Σ2 Σ1^½ (`eigvalsh`), which has the
same eigenvalues as Σ1 Σ2 and never produces the imaginary parts of `scipy.linalg.sqrtm`
(pytorch-fid#117). KID is the unbiased MMD² with the cubic polynomial kernel
k(x, y) = (x·y / d + 1)³, averaged over random subsets (Bińkowski et al. 2018; torch-fidelity's
defaults: 100 subsets of 1000). Shapes: features (N, D). Must not import torch.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Stats:
    """Mean (D,) and covariance (D, D) of N feature vectors, float64."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int


def feature_stats(features: np.ndarray, what: str = "features") -> Stats:
    """Float64 mean and (N−1)-normalised covariance; warns when N < 2·D (a rank-deficient,
    biased covariance: compare such FDs only at the same N, or use KID)."""
    x = np.asarray(features, dtype=np.float64)
    n, d = x.shape
    if n < 2 * d:
        warnings.warn(f"{what}: {n} samples for {d}-dimensional features (fewer than 2 x {d}); "
                      "the Fréchet distance is strongly biased at this N — compare it only at the"
                      " same N, or use KID", stacklevel=2)
    return Stats(x.mean(0), np.cov(x, rowvar=False).reshape(d, d), n)


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """tr √(s1 s2) for symmetric PSD s1, s2, via the eigenvalues of s1^½ s2 s1^½."""
    r = _sqrt_psd(s1)
    m = r @ s2 @ r
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())


def frechet_distance(a: Stats, b: Stats) -> float:
    """The Fréchet distance between the Gaussians fitted to two feature sets."""
    diff = a.mu - b.mu
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma)
                 - 2 * trace_sqrt_product(a.sigma, b.sigma))


def kid(x: np.ndarray, y: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception-style distance: mean and std of the unbiased MMD² over random subsets.

    Args:
        x, y: features (N, D) and (M, D); the subset size is min(subset_size, N, M).
    Returns:
        (mean, std) of MMD² with k(x, y) = (x·y / D + 1)³.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    d = x.shape[1]
    m = min(subset_size, len(x), len(y))
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    for i in range(subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        values[i] = mmd2_unbiased(a, b, d)
    return float(values.mean()), float(values.std())


def mmd2_unbiased(a: np.ndarray, b: np.ndarray, d: int) -> float:
    """Unbiased MMD² of two equal-size samples under the cubic polynomial kernel."""
    m = len(a)
    kaa = (a @ a.T / d + 1) ** 3
    kbb = (b @ b.T / d + 1) ** 3
    kab = (a @ b.T / d + 1) ** 3
    off = (kaa.sum() - np.trace(kaa) + kbb.sum() - np.trace(kbb)) / (m * (m - 1))
    return float(off - 2 * kab.sum() / (m * m))


def class_coverage(predicted: np.ndarray, num_classes: int, threshold: float = 0.03
                   ) -> dict[str, float]:
    """Mode coverage of generated samples from their predicted classes.

    Returns:
        classes_covered: how many classes hold >= `threshold` of the samples;
        kl_uniform: KL(histogram ‖ uniform) in nats (0 = every class equally often,
        log K = one class only).
    """
    hist = np.bincount(np.asarray(predicted, dtype=np.int64), minlength=num_classes)
    p = hist / max(hist.sum(), 1)
    nz = p[p > 0]
    return {"classes_covered": int((p >= threshold).sum()),
            "kl_uniform": float((nz * np.log(nz * num_classes)).sum())}
