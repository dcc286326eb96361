"""Each experiment at a small size: its phenomenon (the verdict) where it shows at that size."""

from __future__ import annotations

import json

import pytest
import torch

from dlab.analysis.experiments import interpolation
from dlab.analysis.registry import ContextSpec, experiments, resolve_config


def _run(name, data_dir, **sizes):
    spec = experiments()[name]
    result = spec.compute(resolve_config(spec, sizes), ContextSpec(data_dir=data_dir))
    json.dumps(result.to_dict())  # everything must be JSON-serializable
    return result


def test_deep_net_fits_f1_faster_than_shallow(data_dir):
    r = _run("deep-vs-shallow-functions", data_dir, epochs=400, repeats=2, threshold=1e-2)
    m = r.verdict.measured
    assert r.verdict.passed, m
    assert m["deep_epochs"] < m["shallow_epochs"]
    assert {v["params"] for v in r.numbers.values()} <= set(range(565, 578))


def test_sensitivity_falls_with_batch_size(data_dir):
    r = _run("sensitivity", data_dir, train_limit=1000, test_limit=200, epochs=1,
             batch_sizes=[16, 64, 256], jacobian_samples=50)
    assert r.verdict.passed, r.verdict.measured
    sens = [row["sensitivity"] for row in r.numbers["models"]]
    assert sens[0] > sens[-1] > 0


def test_interpolation_has_minima_at_the_models_and_a_barrier(data_dir):
    r = _run("flatness-interpolation", data_dir, train_limit=1000, test_limit=200, epochs=20,
             large_batch=100, alphas=31)
    assert r.verdict.passed, r.verdict.measured
    curve = r.numbers["lr"]
    assert len(curve["alpha"]) == 31 and curve["alpha"][0] == -1 and curve["alpha"][-1] == 2


def test_check_curve_rejects_a_monotone_curve():
    alphas = [i / 10 for i in range(-10, 21)]
    assert not interpolation.check_curve(alphas, [1 - a for a in alphas])["ok"]
    bowl2 = [min((a - 0) ** 2, (a - 1) ** 2) + 0.1 for a in alphas]
    assert interpolation.check_curve(alphas, bowl2)["ok"]


def test_random_labels_are_memorized_not_generalized(data_dir):
    r = _run("random-labels", data_dir, train_limit=200, test_limit=1000, epochs=30,
             hidden=[256, 256])
    m = r.verdict.measured
    assert r.verdict.passed, m
    assert m["labels_unchanged_share"] < 0.2  # the labels really were shuffled


def test_test_accuracy_rises_with_width(data_dir):
    r = _run("params-vs-generalization", data_dir, train_limit=500, test_limit=200, epochs=1,
             widths=[2, 8, 32], repeats=2)
    assert r.verdict.passed, r.verdict.measured
    params = [row["params"] for row in r.numbers["models"]]
    assert params == sorted(params)


def test_trajectory_points_and_pca(data_dir):
    r = _run("trajectory", data_dir, train_limit=500, test_limit=200, epochs=6, runs=3,
             min_acc=0.3)
    assert r.verdict.passed, r.verdict.measured
    xy = r.numbers["whole"]["xy"]
    assert len(xy) == 3 and len(xy[0]) == 2  # 3 runs, collected at epochs 3 and 6
    ratios = r.numbers["whole"]["explained_variance_ratio"]
    assert 0 < ratios[1] <= ratios[0] <= 1


def test_grad_norm_recorded_per_iteration(data_dir):
    r = _run("grad-norm", data_dir, iterations=300)
    assert r.verdict.passed, r.verdict.measured
    assert len(r.numbers["grad_norm"]) == 300 and min(r.numbers["grad_norm"]) > 0


def test_depth_cnns_have_about_25_6k_parameters_and_different_depths():
    from dlab.analysis.experiments.mnist_depth import NETS
    from dlab.analysis.nets import cnn, count_params

    depths = []
    for channels, per_stage in NETS.values():
        model = cnn(channels, per_stage)
        assert abs(count_params(model) - 25_600) / 25_600 < 0.02
        depths.append(sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()))
    assert depths == [1, 2, 4]
