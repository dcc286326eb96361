"""evaluate(): accuracy and loss over a resident split, and test-time augmentation."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlab.config import AugmentConfig, DataConfig
from dlab.data import ArrayDataset
from dlab.torch_engine.batches import DeviceData
from dlab.torch_engine.evaluate import evaluate


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    ds = ArrayDataset("toy", "test", rng.integers(0, 256, (50, 1, 6, 6), dtype=np.uint8),
                      rng.integers(0, 3, 50), ("a", "b", "c"))
    return DeviceData(ds, DataConfig(), torch.device("cpu"))


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 3))


def test_plain_evaluation_matches_cross_entropy(data):
    model = _model()
    result = evaluate(model, data, batch_size=16)
    x = data.prepare(data.images)
    logits = model(x)
    expected = torch.nn.functional.cross_entropy(logits, data.labels).item()
    assert result.loss == pytest.approx(expected, rel=1e-5)
    assert result.acc == pytest.approx((logits.argmax(1) == data.labels).float().mean().item())


def test_flip_averages_the_softmax_of_the_image_and_its_mirror(data):
    model = _model()
    result = evaluate(model, data, batch_size=16, tta="flip")
    x = data.prepare(data.images)
    probs = (model(x).softmax(1) + model(x.flip(-1)).softmax(1)) / 2
    expected_loss = torch.nn.functional.nll_loss(probs.log(), data.labels).item()
    assert result.loss == pytest.approx(expected_loss, rel=1e-5)
    np.testing.assert_array_equal(result.predictions, probs.argmax(1).numpy())
    np.testing.assert_allclose(result.confidence, probs.max(1).values.detach().numpy(), rtol=1e-5)
    # a model that is not mirror-symmetric predicts differently with and without flipping
    assert not np.allclose(result.confidence, evaluate(model, data, 16).confidence)


def test_flip_shift_averages_18_views_shifted_with_black_borders():
    rng = np.random.default_rng(1)
    ds = ArrayDataset("toy", "test", rng.integers(0, 256, (20, 1, 6, 6), dtype=np.uint8),
                      rng.integers(0, 3, 20), ("a", "b", "c"))
    data = DeviceData(ds, DataConfig(mean=(0.5,), std=(0.25,)), torch.device("cpu"))
    model = _model()
    result = evaluate(model, data, batch_size=8, tta="flip-shift")
    raw = data.images.float() / 255.0
    probs = 0
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            # content moves by (dx, dy); the uncovered border is black before normalization
            shifted = F.pad(raw, (1, 1, 1, 1))[..., 1 - dy:7 - dy, 1 - dx:7 - dx]
            x = (shifted - 0.5) / 0.25
            probs = probs + model(x).softmax(1) + model(x.flip(-1)).softmax(1)
    probs = probs / 18
    # the slicing above, checked by hand for dx = 1: column 0 moves to column 1, black enters
    moved = F.pad(raw, (1, 1, 1, 1))[..., 1:7, 0:6]
    assert torch.equal(moved[..., 1:], raw[..., :-1]) and moved[..., 0].eq(0).all()
    expected_loss = F.nll_loss(probs.log(), data.labels).item()
    assert result.loss == pytest.approx(expected_loss, rel=1e-5)
    np.testing.assert_array_equal(result.predictions, probs.argmax(1).numpy())
    np.testing.assert_allclose(result.confidence, probs.max(1).values.detach().numpy(), rtol=1e-5)
    assert not np.allclose(result.confidence, evaluate(model, data, 8, tta="flip").confidence)


def test_precision_bf16_runs_in_bfloat16_on_the_cpu_and_auto_does_not(data):
    from dlab.config import resolve
    from dlab.errors import DlabError
    from dlab.torch_engine.evaluate import autocast

    model = _model()
    x = data.prepare(data.images[:4])
    seen = {}
    for precision in ("auto", "fp32", "bf16"):
        with autocast(torch.device("cpu"), precision):
            seen[precision] = model(x).dtype
    assert seen == {"auto": torch.float32, "fp32": torch.float32, "bf16": torch.bfloat16}
    fp32 = evaluate(model, data, batch_size=16)
    bf16 = evaluate(model, data, batch_size=16, precision="bf16")
    assert bf16.loss != fp32.loss and bf16.loss == pytest.approx(fp32.loss, rel=0.05)
    with pytest.raises(DlabError, match="train.precision = 'fp16'; expected one of: auto, bf16"):
        resolve({"train": {"precision": "fp16"}})


def test_flip_diagonal_weighs_the_unshifted_pair_double_and_reflect_fill_mirrors_the_edge():
    """airbench's TTA: the image and its mirror at weight 1/4 each, the one-pixel diagonal
    shifts (both ways, each mirrored) at 1/8; with data.augment.crop_fill = "reflect" the
    shifted views mirror the edge instead of filling it with black."""
    rng = np.random.default_rng(2)
    ds = ArrayDataset("toy", "test", rng.integers(0, 256, (20, 1, 6, 6), dtype=np.uint8),
                      rng.integers(0, 3, 20), ("a", "b", "c"))
    cfg = DataConfig(mean=(0.5,), std=(0.25,), augment=AugmentConfig(crop_fill="reflect"))
    data = DeviceData(ds, cfg, torch.device("cpu"))
    model = _model()
    result = evaluate(model, data, batch_size=8, tta="flip-diagonal")
    x = data.prepare(data.images)
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")

    def pair(v):
        return model(v).softmax(1) + model(v.flip(-1)).softmax(1)

    probs = (2 * pair(x) + pair(padded[..., 0:6, 0:6]) + pair(padded[..., 2:8, 2:8])) / 8
    assert result.loss == pytest.approx(F.nll_loss(probs.log(), data.labels).item(), rel=1e-5)
    np.testing.assert_allclose(result.confidence, probs.max(1).values.detach().numpy(), rtol=1e-5)
    zero = DeviceData(ds, DataConfig(mean=(0.5,), std=(0.25,)), torch.device("cpu"))
    assert not np.allclose(result.confidence,
                           evaluate(model, zero, 8, tta="flip-diagonal").confidence)
