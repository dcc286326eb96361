"""evaluate(): accuracy and loss over a resident split, and test-time flip averaging."""

import numpy as np
import pytest
import torch

from dlab.config import DataConfig
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
    result = evaluate(model, data, batch_size=16, flip=True)
    x = data.prepare(data.images)
    probs = (model(x).softmax(1) + model(x.flip(-1)).softmax(1)) / 2
    expected_loss = torch.nn.functional.nll_loss(probs.log(), data.labels).item()
    assert result.loss == pytest.approx(expected_loss, rel=1e-5)
    np.testing.assert_array_equal(result.predictions, probs.argmax(1).numpy())
    np.testing.assert_allclose(result.confidence, probs.max(1).values.detach().numpy(), rtol=1e-5)
    # a model that is not mirror-symmetric predicts differently with and without flipping
    assert not np.allclose(result.confidence, evaluate(model, data, 16).confidence)
