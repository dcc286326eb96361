"""Naive and fast convolution / max pooling agree on odd shapes, strides 1-3, paddings 0-2."""

import itertools

import numpy as np
import pytest

from dlab.errors import DlabError
from dlab.numpy_engine import conv, pool


@pytest.mark.parametrize("stride,pad", list(itertools.product((1, 2, 3), (0, 1, 2))))
def test_conv_twins_agree(stride, pad):
    rng = np.random.default_rng(stride * 10 + pad)
    x = rng.standard_normal((2, 3, 9, 7))
    w = rng.standard_normal((5, 3, 3, 2))
    b = rng.standard_normal(5)
    out_n, cache_n = conv.conv_forward_naive(x, w, b, stride, pad)
    out_f, cache_f = conv.conv_forward_im2col(x, w, b, stride, pad)
    assert out_n.shape == out_f.shape == (2, 5, 1 + (9 + 2 * pad - 3) // stride,
                                          1 + (7 + 2 * pad - 2) // stride)
    np.testing.assert_allclose(out_f, out_n, rtol=0, atol=1e-10)
    dout = rng.standard_normal(out_n.shape)
    for g_n, g_f in zip(conv.conv_backward_naive(dout, cache_n),
                        conv.conv_backward_im2col(dout, cache_f)):
        np.testing.assert_allclose(g_f, g_n, rtol=0, atol=1e-10)


@pytest.mark.parametrize("size,stride", [((2, 2), 2), ((3, 3), 1), ((2, 3), 3), ((3, 2), 2)])
def test_pool_twins_agree(size, stride):
    rng = np.random.default_rng(stride)
    x = rng.standard_normal((2, 3, 9, 7))
    x[0, 0, :2, :2] = 1.0  # a tie: both versions route the gradient to the first maximum
    out_n, cache_n = pool.max_pool_forward_naive(x, *size, stride)
    out_f, cache_f = pool.max_pool_forward_fast(x, *size, stride)
    np.testing.assert_allclose(out_f, out_n, rtol=0, atol=1e-10)
    dout = rng.standard_normal(out_n.shape)
    np.testing.assert_allclose(pool.max_pool_backward_fast(dout, cache_f),
                               pool.max_pool_backward_naive(dout, cache_n), rtol=0, atol=1e-10)


def test_conv_shape_errors():
    x = np.zeros((1, 3, 5, 5))
    with pytest.raises(DlabError, match="3 channels but the filters expect 2"):
        conv.conv_forward_im2col(x, np.zeros((4, 2, 3, 3)), np.zeros(4))
    with pytest.raises(DlabError, match="does not fit"):
        conv.conv_forward_naive(x, np.zeros((4, 3, 7, 7)), np.zeros(4))
    with pytest.raises(DlabError, match="max pool"):
        pool.max_pool_forward_fast(x, 6, 6, 1)
