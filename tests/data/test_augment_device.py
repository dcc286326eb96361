"""On-device batch augmentation: identity, shapes, flip, crop, affine, erasing, determinism."""

from __future__ import annotations

import pytest
import torch

from dlab.config import AugmentConfig
from dlab.data.augment import Augmenter

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def batch(b=64, c=3, h=16, w=16, seed=0, device="cpu") -> torch.Tensor:
    return torch.rand(b, c, h, w, generator=gen(seed)).to(device)


def test_identity_when_nothing_enabled():
    x = batch()
    assert Augmenter(AugmentConfig())(x, gen(0)) is x


ALL_ON = AugmentConfig(crop_padding=2, flip=True, rotate_deg=10, translate=0.1, scale=0.1,
                       erasing=0.5, erasing_area=0.2)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_device_and_range_kept(device, dtype):
    x = batch(device=device).to(dtype)
    y = Augmenter(ALL_ON)(x, gen(1, device))
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
    assert y.min() >= 0 and y.max() <= 1
    assert not torch.equal(y, x)


def test_same_generator_same_batch_other_seed_other_batch():
    x = batch()
    aug = Augmenter(ALL_ON)
    assert torch.equal(aug(x, gen(7)), aug(x, gen(7)))
    assert not torch.equal(aug(x, gen(7)), aug(x, gen(8)))


def test_flip_flips_about_half_exactly():
    x = batch(b=1000, h=8, w=8)
    y = Augmenter(AugmentConfig(flip=True))(x, gen(3))
    flipped = (y == x.flip(3)).flatten(1).all(1)
    kept = (y == x).flatten(1).all(1)
    assert bool((flipped ^ kept).all())  # each image is exactly one of the two
    assert 400 < int(flipped.sum()) < 600


@pytest.mark.parametrize("p", [1, 3])
def test_crop_is_a_window_of_the_padded_image_shifted_at_most_p(p):
    b, h, w = 40, 10, 12
    # Distinct positive values, so a window's position is recovered from any pixel.
    x = (torch.arange(h * w, dtype=torch.float32) + 1).view(1, 1, h, w).repeat(b, 2, 1, 1) / (h * w)
    y = Augmenter(AugmentConfig(crop_padding=p))(x, gen(5))
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    shifts = set()
    for i in range(b):  # test-side search over the (2p+1)^2 windows
        hits = [(dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
                if torch.equal(y[i], padded[i, :, dy:dy + h, dx:dx + w])]
        assert len(hits) == 1
        shifts.add(hits[0])
    assert len(shifts) > 3  # different images get different shifts


def test_affine_translation_moves_a_dot_by_at_most_the_bound():
    x = torch.zeros(200, 1, 33, 33)
    x[:, :, 16, 16] = 1.0
    y = Augmenter(AugmentConfig(translate=0.1))(x, gen(2))
    weight = y[:, 0]
    ys, xs = torch.meshgrid(torch.arange(33.0), torch.arange(33.0), indexing="ij")
    cy = (weight * ys).sum((1, 2)) / weight.sum((1, 2))
    cx = (weight * xs).sum((1, 2)) / weight.sum((1, 2))
    bound = 0.1 * 33 + 1e-3
    assert (cy - 16).abs().max() <= bound and (cx - 16).abs().max() <= bound
    assert (cx - 16).abs().max() > 0.5 * bound  # the shifts actually use the range


def test_rotation_keeps_the_centre_and_moves_the_edges():
    x = torch.zeros(50, 1, 31, 31)
    x[:, :, 15, :] = 1.0  # a horizontal line through the centre
    y = Augmenter(AugmentConfig(rotate_deg=30))(x, gen(4))
    assert torch.allclose(y[:, 0, 15, 15], torch.ones(50), atol=1e-5)
    assert (y[:, 0, 15, 0] < 0.5).sum() > 10  # the line's ends leave row 15 when rotated


@pytest.mark.parametrize("area", [0.05, 0.25])
def test_erasing_zeroes_one_rectangle_within_the_area_bound(area):
    b, h, w = 300, 20, 24
    x = torch.ones(b, 3, h, w)
    y = Augmenter(AugmentConfig(erasing=0.5, erasing_area=area))(x, gen(6))
    zero = y[:, 0] == 0
    assert torch.equal(zero, (y == 0).all(1))  # the same rectangle in every channel
    erased = zero.flatten(1).any(1)
    assert 100 < int(erased.sum()) < 200
    for i in torch.nonzero(erased).flatten().tolist():
        rows = torch.nonzero(zero[i].any(1)).flatten()
        cols = torch.nonzero(zero[i].any(0)).flatten()
        box = zero[i, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        assert bool(box.all())  # the zeros fill their bounding box: a rectangle
        assert int(zero[i].sum()) == box.numel() <= area * h * w
    assert torch.equal(y[~erased], x[~erased])



def test_erasing_with_zero_area_erases_nothing():
    x = torch.ones(50, 1, 8, 8)
    assert torch.equal(Augmenter(AugmentConfig(erasing=1.0, erasing_area=0.0))(x, gen(0)), x)


def test_reflect_crop_is_a_window_of_the_mirror_padded_image():
    b, h, w, p = 40, 10, 12, 2
    x = (torch.arange(h * w, dtype=torch.float32) + 1).view(1, 1, h, w).repeat(b, 2, 1, 1) / (h * w)
    y = Augmenter(AugmentConfig(crop_padding=p, crop_fill="reflect"))(x, gen(5))
    padded = torch.nn.functional.pad(x, (p, p, p, p), mode="reflect")
    assert y.min() > 0  # no black border
    for i in range(b):
        assert any(torch.equal(y[i], padded[i, :, dy:dy + h, dx:dx + w])
                   for dy in range(2 * p + 1) for dx in range(2 * p + 1))
