"""The registry of gradient checks: every numpy layer and loss, checked in float64.

Each entry builds small random inputs, runs the analytic backward pass and compares it with
centred differences (`gradcheck.numeric_gradient`), one relative error per input/parameter.
Inputs avoid kinks (ReLU at 0, max-pool ties) so that differences are meaningful. The shared
contract test and `dlab gradcheck` both iterate over `CHECKS`. Must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from dlab.errors import DlabError
from dlab.numpy_engine import conv, layers, losses, norm, pool
from dlab.numpy_engine.gradcheck import numeric_gradient, rel_error


@dataclass(frozen=True)
class LayerCheck:
    """inputs(rng) -> dict of arrays and options; forward(**inputs) -> (out, cache);
    backward(dout, cache) -> grads in the order of `wrt`. A loss has is_loss=True and its
    forward returns (loss, dx)."""

    inputs: Callable
    forward: Callable
    backward: Callable | None
    wrt: tuple[str, ...]
    is_loss: bool = False


def _away_from_zero(rng, shape):
    x = rng.standard_normal(shape)
    return np.sign(x) * (0.1 + np.abs(x))


def _distinct(rng, shape):
    return rng.permutation(np.prod(shape)).reshape(shape) * 0.01 + rng.standard_normal() * 0.1


def _conv_inputs(rng):
    return {"x": rng.standard_normal((2, 3, 7, 6)), "w": rng.standard_normal((4, 3, 3, 3)),
            "b": rng.standard_normal(4), "stride": 2, "pad": 1}


def _bn_inputs(rng, shape):
    c = shape[1]
    return {"x": 3 * rng.standard_normal(shape) + 1, "gamma": rng.standard_normal(c),
            "beta": rng.standard_normal(c), "bn_param": {"mode": "train"}}


def _dropout_forward(x, p, seed):
    return layers.dropout_forward(x, p, True, np.random.default_rng(seed))


CHECKS: dict[str, LayerCheck] = {
    "affine": LayerCheck(lambda r: {"x": r.standard_normal((4, 2, 3)),
                                    "w": r.standard_normal((6, 5)), "b": r.standard_normal(5)},
                         layers.affine_forward, layers.affine_backward, ("x", "w", "b")),
    "relu": LayerCheck(lambda r: {"x": _away_from_zero(r, (4, 5))}, layers.relu_forward,
                       layers.relu_backward, ("x",)),
    "leaky_relu": LayerCheck(lambda r: {"x": _away_from_zero(r, (4, 5)), "slope": 0.1},
                             layers.leaky_relu_forward, layers.leaky_relu_backward, ("x",)),
    "tanh": LayerCheck(lambda r: {"x": r.standard_normal((4, 5))}, layers.tanh_forward,
                       layers.tanh_backward, ("x",)),
    "sigmoid": LayerCheck(lambda r: {"x": 3 * r.standard_normal((4, 5))},
                          layers.sigmoid_forward, layers.sigmoid_backward, ("x",)),
    "dropout": LayerCheck(lambda r: {"x": r.standard_normal((6, 5)), "p": 0.4, "seed": 3},
                          _dropout_forward, layers.dropout_backward, ("x",)),
    "batchnorm": LayerCheck(lambda r: _bn_inputs(r, (6, 4)), norm.batchnorm_forward,
                            norm.batchnorm_backward, ("x", "gamma", "beta")),
    "spatial_batchnorm": LayerCheck(lambda r: _bn_inputs(r, (3, 2, 4, 3)),
                                    norm.spatial_batchnorm_forward,
                                    norm.spatial_batchnorm_backward, ("x", "gamma", "beta")),
    "conv_naive": LayerCheck(_conv_inputs, conv.conv_forward_naive, conv.conv_backward_naive,
                             ("x", "w", "b")),
    "conv_im2col": LayerCheck(_conv_inputs, conv.conv_forward_im2col,
                              conv.conv_backward_im2col, ("x", "w", "b")),
    "max_pool_naive": LayerCheck(lambda r: {"x": _distinct(r, (2, 3, 6, 5)), "stride": 2},
                                 pool.max_pool_forward_naive, pool.max_pool_backward_naive,
                                 ("x",)),
    "max_pool_fast": LayerCheck(lambda r: {"x": _distinct(r, (2, 3, 6, 5)), "stride": 2},
                                pool.max_pool_forward_fast, pool.max_pool_backward_fast, ("x",)),
    "softmax_loss": LayerCheck(lambda r: {"x": r.standard_normal((7, 5)),
                                          "y": r.integers(0, 5, 7)},
                               losses.softmax_loss, None, ("x",), is_loss=True),
    "svm_loss": LayerCheck(lambda r: {"x": r.standard_normal((7, 5)), "y": r.integers(0, 5, 7)},
                           losses.svm_loss, None, ("x",), is_loss=True),
    "mse_loss": LayerCheck(lambda r: {"x": r.standard_normal((4, 3)),
                                      "target": r.standard_normal((4, 3))},
                           losses.mse_loss, None, ("x",), is_loss=True),
    "l2_penalty": LayerCheck(lambda r: {"w": r.standard_normal((4, 3)), "reg": 0.3},
                             lambda w, reg: (losses.l2_penalty([w], reg)[0],
                                             losses.l2_penalty([w], reg)[1][0]),
                             None, ("w",), is_loss=True),
}


def check_one(name: str, seed: int = 0) -> dict[str, float]:
    """Relative error between analytic and numeric gradients for each input of check `name`."""
    spec = CHECKS[name]
    rng = np.random.default_rng(seed)
    inputs = spec.inputs(rng)
    if spec.is_loss:
        _, analytic = spec.forward(**inputs)
        key = spec.wrt[0]
        numeric = numeric_gradient(lambda: spec.forward(**inputs)[0], inputs[key])
        return {key: rel_error(analytic, numeric)}
    out, cache = spec.forward(**inputs)
    dout = rng.standard_normal(out.shape)
    grads = spec.backward(dout, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    errors = {}
    for key, analytic in zip(spec.wrt, grads):
        numeric = numeric_gradient(lambda: spec.forward(**inputs)[0], inputs[key], dout)
        errors[key] = rel_error(analytic, numeric)
    return errors


def run_checks(only=None):
    """Yield (check name, input name, relative error) for every (or the named) checks."""
    names = list(CHECKS) if not only else list(only)
    for name in names:
        if name not in CHECKS:
            raise DlabError(f"unknown gradient check {name!r}; expected one of {list(CHECKS)}")
    for name in names:
        for key, err in check_one(name).items():
            yield name, key, err
