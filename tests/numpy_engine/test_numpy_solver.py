"""Solver: learns, follows lr schedules, resumes bit-exactly from an npz checkpoint; bad input."""

import numpy as np
import pytest

from dlab.errors import DlabError
from dlab.numpy_engine import layers, optim
from dlab.numpy_engine.mlp import MLP, MLPConfig
from dlab.numpy_engine.schedule import ScheduleConfig, lr_at
from dlab.numpy_engine.solver import Solver, SolverConfig


def _blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 5)) + 3 * np.eye(3, 5)[y]
    return x, y


def _solver(epochs, cfg=MLPConfig(input_dim=5, hidden=(16, 16), num_classes=3,
                                  dropout=(0.1, 0.0), dtype="float64")):
    x, y = _blobs()
    model = MLP(cfg, rng=np.random.default_rng(1))
    return Solver(model, (x[:200], y[:200]), (x[200:], y[200:]),
                  SolverConfig(update_rule="nesterov", lr=0.05, batch_size=20, epochs=epochs,
                               schedule=ScheduleConfig("step", "epoch", 2, 0.5)))


def test_solver_learns_separable_blobs():
    s = _solver(6)
    h = s.train()
    assert h["val_acc"][-1] > 0.9
    assert np.mean(h["loss"][-10:]) < np.mean(h["loss"][:10])
    assert h["lr"][0] == 0.05 and h["lr"][-1] == pytest.approx(0.05 * 0.5 ** 2)


def test_checkpoint_resume_is_exact(tmp_path):
    full = _solver(4)
    full.train()
    first = _solver(4)
    first.cfg = first.cfg  # same config; stop after 2 epochs by training epoch by epoch
    first.train_epoch()
    first.train_epoch()
    first.save(tmp_path / "ck.npz")
    resumed = _solver(4)
    resumed.load(tmp_path / "ck.npz")
    assert resumed.epoch == 2
    resumed.train()
    for k in full.model.params:
        np.testing.assert_array_equal(full.model.params[k], resumed.model.params[k])
    assert full.history["loss"] == resumed.history["loss"]
    with open(tmp_path / "ck.npz", "rb") as fh:
        assert b"pickle" not in fh.read()


def test_lr_schedules():
    base = 0.1
    assert lr_at(base, ScheduleConfig("constant"), 5, 100) == base
    assert lr_at(base, ScheduleConfig("step", "epoch", 3, 0.1), 5, 100) == pytest.approx(0.01)
    assert lr_at(base, ScheduleConfig("exponential", "batch", 1, 0.5), 9, 2) == pytest.approx(
        0.025)


@pytest.mark.parametrize("make,match", [
    (lambda: SolverConfig(lr=0).validate(), "learning rate 0"),
    (lambda: SolverConfig(lr=-1.0).validate(), "learning rate -1.0"),
    (lambda: SolverConfig(update_rule="adamax").validate(), "unknown update rule 'adamax'"),
    (lambda: optim.sgd(np.ones(2), np.ones(2), {"lr": -0.1}), "learning rate -0.1"),
    (lambda: MLPConfig(dropout=(1.0, 0.5)).validate(), r"dropout rate 1.0; expected .*\[0, 1\)"),
    (lambda: MLPConfig(dropout=(-0.1, 0.5)).validate(), "dropout rate -0.1"),
    (lambda: MLPConfig(dropout=(0.5,)).validate(), "one per hidden layer"),
    (lambda: MLPConfig(activation="swish").validate(), "unknown activation 'swish'"),
    (lambda: ScheduleConfig(kind="cosine").validate(), "unknown lr schedule 'cosine'"),
    (lambda: layers.affine_forward(np.ones((2, 3)), np.ones((4, 5)), np.ones(5)),
     r"affine shapes x \(2, 3\)"),
])
def test_bad_input_is_a_one_line_error(make, match):
    with pytest.raises(DlabError, match=match) as info:
        make()
    assert "\n" not in str(info.value)


def test_mismatched_train_arrays_rejected():
    x, y = _blobs()
    model = MLP(MLPConfig(input_dim=5, hidden=(4,), dropout=(0.0,), num_classes=3))
    with pytest.raises(DlabError, match="expected equal"):
        Solver(model, (x, y[:10]), (x, y), SolverConfig())
