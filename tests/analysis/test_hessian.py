"""Exact Hessians and the minimal-ratio experiment's pieces."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dlab.analysis.batched import stack_params
from dlab.analysis.experiments.minimal_ratio import MinimalRatioConfig, train_to_critical_points
from dlab.analysis.hessian import minimal_ratio, stacked_hessians
from dlab.analysis.nets import init_copies, mlp


def test_hessian_of_linear_least_squares_is_2_over_n_xtx():
    torch.manual_seed(0)
    x = torch.randn(20, 3, dtype=torch.float64)
    y = torch.randn(20, 1, dtype=torch.float64)
    base, params = stack_params([m.double() for m in init_copies(lambda: mlp((3, 1)), 2, 0)])
    hess = stacked_hessians(base, params, x, y, F.mse_loss)
    design = torch.cat([x, torch.ones(20, 1, dtype=torch.float64)], dim=1)  # [w, b] order
    expected = 2 / 20 * design.T @ design
    assert hess.shape == (2, 4, 4)
    torch.testing.assert_close(hess[0], expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(hess[1], expected, rtol=1e-12, atol=1e-12)
    ratio, asym = minimal_ratio(hess)
    assert ratio.tolist() == [1.0, 1.0]  # a convex quadratic: all eigenvalues positive
    assert float(asym.max()) < 1e-12


def test_minimal_ratio_of_a_saddle():
    hess = torch.diag(torch.tensor([2.0, -1.0, 3.0, -0.5], dtype=torch.float64)).unsqueeze(0)
    ratio, _ = minimal_ratio(hess)
    assert float(ratio[0]) == 0.5


def test_minimal_ratio_pipeline_small():
    cfg = MinimalRatioConfig(nets=6, points=40, loss_steps=300, grad_steps=150)
    base, params, x, y, gnorm_after = train_to_critical_points(cfg)
    hess = stacked_hessians(base, params, x, y, F.mse_loss)
    ratio, asym = minimal_ratio(hess)
    assert hess.shape == (6, 46, 46)
    assert float(asym.max()) < 1e-6
    assert bool(((ratio > 0) & (ratio <= 1)).all()), ratio
    # the gradient-norm phase must lower the gradient norm it minimizes
    no_gn = MinimalRatioConfig(nets=6, points=40, loss_steps=300, grad_steps=1)
    *_, gnorm_before = train_to_critical_points(no_gn)
    assert float(gnorm_after.median()) < float(gnorm_before.median())
