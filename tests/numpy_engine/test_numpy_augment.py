"""Augmentation: identity without randomness, exact integer shifts, labels-free, train-only."""

import numpy as np

from dlab.numpy_engine.augment import AugmentConfig, augment_batch, bilinear_sample, gaussian_matrix
from dlab.numpy_engine.mnist_mlp import MnistMLPConfig, make_transform, DEFAULT_AUGMENT


def test_zero_augmentation_is_identity():
    x = np.random.default_rng(0).random((4, 1, 28, 28)).astype(np.float32)
    out = augment_batch(x, AugmentConfig(), np.random.default_rng(1))
    np.testing.assert_allclose(out, x, atol=1e-6)


def test_bilinear_sample_integer_shift_and_zero_fill():
    img = np.arange(2 * 5 * 6, dtype=np.float64).reshape(2, 5, 6)
    ys, xs = np.meshgrid(np.arange(5.0), np.arange(6.0), indexing="ij")
    out = bilinear_sample(img, np.broadcast_to(ys - 1, img.shape), np.broadcast_to(xs + 2, img.shape))
    np.testing.assert_array_equal(out[:, 1:, :4], img[:, :4, 2:])
    assert (out[:, 0] == 0).all() and (out[:, :, 4:] == 0).all()


def test_gaussian_matrix_smooths_without_gain():
    g = gaussian_matrix(28, 4.0, np.float64)
    assert np.all(g.sum(axis=1) <= 1 + 1e-12)
    assert abs(g[14].sum() - 1) < 0.01  # interior rows keep a constant field


def test_real_digits_change_but_keep_their_ink(data_dir):
    from dlab.data import load_dataset

    x = load_dataset("mnist", "train", data_dir).images[:64].astype(np.float32) / 255
    out = augment_batch(x, DEFAULT_AUGMENT, np.random.default_rng(0))
    assert np.abs(out - x).mean() > 0.02
    ratio = out.sum(axis=(1, 2, 3)) / x.sum(axis=(1, 2, 3))
    assert 0.6 < np.median(ratio) < 1.5


def test_transform_augments_training_batches_only():
    cfg = MnistMLPConfig(augment=DEFAULT_AUGMENT)
    t = make_transform(cfg)
    batch = np.random.default_rng(0).integers(0, 255, (3, 1, 28, 28), dtype=np.uint8)
    test_a, test_b = t(batch, False, None), t(batch, False, None)
    np.testing.assert_array_equal(test_a, test_b)
    assert test_a.shape == (3, 784)
    assert np.abs(t(batch, True, np.random.default_rng(0)) - test_a).max() > 0.1
