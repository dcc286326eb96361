"""FD/KID math against scipy and brute force; coverage; the small-N warning."""

import numpy as np
import pytest
import scipy.linalg

from dlab.generative.frechet import (class_coverage, feature_stats, frechet_distance, kid,
                                     mmd2_unbiased, trace_sqrt_product)


def _gauss(rng, n, d, shift=0.0, scale=1.0):
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ a * scale + shift


def test_trace_sqrt_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    for d in (3, 8, 20):
        x, y = _gauss(rng, 400, d), _gauss(rng, 400, d, 0.5, 2.0)
        s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
        ref = np.trace(scipy.linalg.sqrtm(s1 @ s2)).real
        assert trace_sqrt_product(s1, s2) == pytest.approx(ref, rel=1e-8)


def test_frechet_distance_matches_the_scipy_formula():
    rng = np.random.default_rng(1)
    x, y = _gauss(rng, 500, 10), _gauss(rng, 600, 10, shift=0.3, scale=1.5)
    a, b = feature_stats(x), feature_stats(y)
    covmean = scipy.linalg.sqrtm(a.sigma @ b.sigma).real
    ref = ((a.mu - b.mu) ** 2).sum() + np.trace(a.sigma + b.sigma - 2 * covmean)
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-8)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    # a pure mean shift by t in every coordinate adds exactly d * t²
    shifted = feature_stats(x + 2.0)
    assert frechet_distance(a, shifted) == pytest.approx(10 * 4.0, rel=1e-8)


def test_kid_is_unbiased_and_matches_brute_force():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(30, 4)), rng.normal(size=(30, 4)) + 1.0
    k = lambda u, v: (u @ v / 4 + 1) ** 3  # noqa: E731
    m = len(a)
    xx = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(a[i], b[j]) for i in range(m) for j in range(m)) / (m * m)
    assert mmd2_unbiased(a, b, 4) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)
    # same distribution: the mean over subsets is near 0 (negative values allowed: unbiased)
    same, _ = kid(rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4)), 20, 500)
    diff, _ = kid(rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4)) + 0.5, 20, 500)
    assert abs(same) < 0.01 < diff


def test_small_n_warns():
    with pytest.warns(UserWarning, match="fewer than 2 x 50"):
        feature_stats(np.random.default_rng(0).normal(size=(60, 50)))


def test_class_coverage():
    out = class_coverage(np.zeros(100, dtype=int), 10)
    assert out["classes_covered"] == 1 and out["kl_uniform"] == pytest.approx(np.log(10))
    out = class_coverage(np.arange(1000) % 10, 10)
    assert out["classes_covered"] == 10 and out["kl_uniform"] == pytest.approx(0.0, abs=1e-12)
