"""The five rungs of the MLP ladder agree step by step (100 steps, float64, no dropout)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dlab.data import load_dataset  # noqa: E402
from dlab.errors import DlabError  # noqa: E402
from dlab.ladder import numpy_rung, torch_autograd, torch_manual, torch_nn  # noqa: E402
from dlab.ladder.config import LadderConfig, initial_params, make_batches  # noqa: E402
from dlab.numpy_engine.mlp import MLPConfig  # noqa: E402
from dlab.numpy_engine.schedule import ScheduleConfig  # noqa: E402

TORCH_RUNGS = [torch_manual, torch_autograd, torch_nn]


@pytest.fixture(autouse=True)
def _one_thread():
    # Two busy cores: torch's own thread pool only adds contention for these tiny matrices.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def mnist_slice(data_dir):
    ds = load_dataset("mnist", "train", data_dir)
    X = (ds.images[:3200].reshape(3200, -1) / 255.0 - 0.1307) / 0.3081
    return X, ds.labels[:3200]


def _cfg(rule="momentum", **kw):
    model = MLPConfig(hidden=(32, 16), dropout=(0.0, 0.0), reg=1e-3, dtype="float64")
    return LadderConfig(model=model, update_rule=rule, batch_size=32, **kw)


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b) / np.abs(b)))


@pytest.mark.parametrize("rung", TORCH_RUNGS, ids=lambda r: r.__name__.rsplit(".", 1)[1])
def test_torch_rungs_match_numpy_for_100_steps(rung, mnist_slice):
    cfg = _cfg(schedule=ScheduleConfig("step", "batch", 30, 0.5))
    p0 = initial_params(cfg)
    batches = make_batches(*mnist_slice, cfg, 100)
    ref = numpy_rung.train_steps(cfg, p0, batches)
    got = rung.train_steps(cfg, p0, batches)
    assert len(got.losses) == 100
    assert ref.losses[-1] < 0.5 * ref.losses[0]  # it trains, so the comparison means something
    assert _rel(got.losses, ref.losses) <= 1e-6
    for k in ref.params:
        np.testing.assert_allclose(got.params[k], ref.params[k], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("rule", ["sgd", "nesterov", "adam", "rmsprop", "adagrad"])
def test_every_update_rule_agrees_across_torch_rungs(rule, mnist_slice):
    cfg = _cfg(rule, lr=0.01 if rule in ("adam", "rmsprop") else 0.05)
    p0 = initial_params(cfg)
    batches = make_batches(*mnist_slice, cfg, 15)
    ref = numpy_rung.train_steps(cfg, p0, batches).losses
    for rung in TORCH_RUNGS:
        assert _rel(rung.train_steps(cfg, p0, batches).losses, ref) <= 1e-6, rung.__name__


def test_dropout_is_active_in_training_on_every_rung(mnist_slice):
    cfg = LadderConfig(model=MLPConfig(hidden=(32, 16), dropout=(0.5, 0.2), dtype="float64"),
                       batch_size=32)
    p0 = initial_params(cfg)
    batches = make_batches(*mnist_slice, cfg, 3)
    plain = numpy_rung.train_steps(_cfg(), p0, batches).losses[0]
    for rung in (numpy_rung, *TORCH_RUNGS):
        first = rung.train_steps(cfg, p0, batches).losses[0]
        assert abs(first - plain) > 1e-3, rung.__name__


def test_bad_ladder_config_is_rejected():
    with pytest.raises(DlabError, match="unknown update rule 'lion'"):
        _cfg("lion").validate()
    with pytest.raises(DlabError, match="learning rate 0"):
        _cfg(lr=0).validate()
