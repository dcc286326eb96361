"""The Keras 3 (torch backend) rung agrees with the numpy engine within 1e-4 over 100 steps."""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is first imported
torch = pytest.importorskip("torch")
pytest.importorskip("keras")

from dlab.data import load_dataset  # noqa: E402
from dlab.ladder import keras_mlp, numpy_rung  # noqa: E402
from dlab.ladder.config import LadderConfig, initial_params, make_batches  # noqa: E402
from dlab.numpy_engine.mlp import MLPConfig  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.mark.parametrize("rule", ["momentum", "nesterov"])
def test_keras_matches_numpy_for_100_steps(rule, data_dir):
    ds = load_dataset("mnist", "train", data_dir)
    X = (ds.images[:3200].reshape(3200, -1) / 255.0 - 0.1307) / 0.3081
    cfg = LadderConfig(model=MLPConfig(hidden=(32, 16), dropout=(0.0, 0.0), reg=1e-3,
                                       dtype="float64"), update_rule=rule, batch_size=32)
    p0 = initial_params(cfg)
    batches = make_batches(X, ds.labels[:3200], cfg, 100)
    ref = numpy_rung.train_steps(cfg, p0, batches)
    got = keras_mlp.train_steps(cfg, p0, batches)
    rel = np.max(np.abs(np.array(got.losses) - ref.losses) / np.array(ref.losses))
    assert ref.losses[-1] < 0.5 * ref.losses[0]
    assert rel <= 1e-4, rel
    for k in ref.params:
        np.testing.assert_allclose(got.params[k], ref.params[k], rtol=1e-3, atol=1e-5)


def test_keras_rung_in_the_task_with_leaky_relu_agrees(tmp_path, data_dir):
    # Keras' LeakyReLU slope defaults to 0.3 (0.2 as an activation string); the engine's is 0.01
    from dlab.tasks import RunContext, get_task, run_task

    task = get_task("ladder")
    cfg = task.resolve({"rungs": ["numpy", "keras"], "steps": 40, "train_limit": 1280,
                        "test_limit": 500, "ladder": {"batch_size": 32, "model": {
                            "hidden": [16, 8], "dtype": "float64", "activation": "leaky_relu",
                            "reg": 1e-3}}})
    result = run_task(task, cfg, RunContext(tmp_path, str(data_dir), progress=False))
    assert result["final"]["parity_ok"] == 1
    assert result["final"]["loss_diff_keras"] <= 1e-5
