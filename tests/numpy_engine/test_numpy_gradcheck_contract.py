"""Contract test: every registered numpy layer and loss passes the float64 gradient check."""

import numpy as np
import pytest

from dlab.errors import DlabError
from dlab.numpy_engine import layers
from dlab.numpy_engine.checks import CHECKS, check_one, run_checks
from dlab.numpy_engine.gradcheck import numeric_gradient, rel_error


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_layer_gradient_matches_centred_differences(name):
    errors = check_one(name)
    assert errors, name
    for key, err in errors.items():
        assert err <= 1e-7, f"{name}.{key}: relative error {err:.2e}"


def test_checker_detects_a_wrong_backward():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5)) + 0.5
    out, cache = layers.relu_forward(x)
    dout = rng.standard_normal(out.shape)
    numeric = numeric_gradient(lambda: layers.relu_forward(x)[0], x, dout)
    assert rel_error(dout, numeric) > 1e-2  # "forgot the mask" is caught
    assert rel_error(layers.relu_backward(dout, cache), numeric) < 1e-9


def test_unknown_check_is_a_one_line_error():
    with pytest.raises(DlabError, match="unknown gradient check 'nope'"):
        list(run_checks(["nope"]))


def test_every_layer_family_is_registered():
    for family in ("affine", "relu", "leaky_relu", "tanh", "sigmoid", "dropout", "batchnorm",
                   "spatial_batchnorm", "conv_naive", "conv_im2col", "max_pool_naive",
                   "max_pool_fast", "softmax_loss", "svm_loss", "mse_loss", "l2_penalty"):
        assert family in CHECKS
