"""The numpy convnet: whole-model gradient check, learning on a tiny batch, CLI run directory."""

import numpy as np
import pytest

from dlab.errors import DlabError
from dlab.numpy_engine.convnet import ConvNet, ConvNetConfig
from dlab.numpy_engine.gradcheck import numeric_gradient, rel_error


def test_convnet_gradients_match_numeric():
    cfg = ConvNetConfig(input_shape=(2, 6, 6), filters=3, kernel=3, num_classes=4,
                        weight_scale=0.5, reg=0.1, dtype="float64")
    rng = np.random.default_rng(0)
    model = ConvNet(cfg, rng)
    X, y = rng.standard_normal((3, 2, 6, 6)), np.array([0, 3, 1])
    _, grads = model.loss(X, y)
    for name, p in model.params.items():
        num = numeric_gradient(lambda: model.loss(X, y)[0], p)
        assert rel_error(grads[name], num) <= 1e-7, name


def test_convnet_overfits_a_tiny_batch():
    rng = np.random.default_rng(1)
    model = ConvNet(ConvNetConfig(input_shape=(3, 8, 8), filters=4, kernel=3, weight_scale=0,
                                  reg=0.0, dtype="float64"), rng)
    X, y = rng.standard_normal((10, 3, 8, 8)), rng.integers(0, 10, 10)
    first = model.loss(X, y)[0]
    for _ in range(60):
        _, g = model.loss(X, y)
        for k in model.params:
            model.params[k] -= 0.1 * g[k]
    assert model.loss(X, y)[0] < 0.2 * first
    assert (model.scores(X).argmax(1) == y).mean() == 1.0


def test_convnet_config_errors():
    with pytest.raises(DlabError, match="kernel 4"):
        ConvNetConfig(kernel=4).validate()


def test_convnet_bad_lr_decay_is_a_one_line_error(tmp_path):
    from dlab.numpy_engine.cifar_convnet import ConvNetRunConfig, run_cifar_convnet

    with pytest.raises(DlabError, match="lr_decay 1.5; expected a factor"):
        run_cifar_convnet(ConvNetRunConfig(lr_decay=1.5), root=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()  # refused before a run directory exists


@pytest.mark.slow
def test_convnet_cli_run_directory(tmp_path, data_dir):
    from dlab.cli import main
    from dlab.results import read_result

    assert main(["numpy", "convnet", "--data-dir", str(data_dir), "--runs-dir", str(tmp_path / "runs"),
                 "--train-size", "500", "--val-size", "100"]) == 0
    run = next((tmp_path / "runs").iterdir())
    result = read_result(run)
    info = result["info"]
    assert result["task"] == "numpy-convnet" and result["status"] == "finished"
    assert info["iterations"] == 10 and info["val_size"] == 100
    assert info["first_lr"] == 1e-4 and info["last_lr"] == pytest.approx(1e-4 * 0.997 ** 9)
    assert result["final"]["train_acc"] < 0.9  # a random subset, not one class
    for fig in ("loss_per_iteration", "accuracy", "filters"):
        assert (run / f"{fig}.png").stat().st_size > 1000
