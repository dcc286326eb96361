"""Contract tests over every model in the registry and every knob of the default net."""

import pytest
import torch
import torch.nn.functional as F

from dlab.config import CNNConfig, MLPConfig, NetConfig
from dlab.errors import DlabError
from dlab.torch_engine.models import build_model, count_params, model_builders

NET_VARIANTS = {
    "default": (NetConfig(), 21840),
    "half": (NetConfig(width=0.5), None),
    "double": (NetConfig(width=2), None),
    "bn": (NetConfig(bn_conv1=True), 21860),
    "bn+dropout": (NetConfig(bn_conv1=True, conv1_dropout=0.2), 21860),
    "dropout+bn": (NetConfig(bn_conv1=True, conv1_dropout=0.2, bn_after_dropout=True), 21860),
    "extra conv": (NetConfig(extra_conv=True), 21840 + 20 * 20 * 9 + 20),
    "no fc2": (NetConfig(remove="fc2"), 320 * 10 + 10 + 260 + 5020),
    "no conv2": (NetConfig(remove="conv2"), None),
}
ALL = {**{f"net {k}": v[0] for k, v in NET_VARIANTS.items()},
       "cnn": CNNConfig(channels=(8, 16)), "resnet": CNNConfig(channels=(8, 16), residual=True),
       "cnn flatten avg": CNNConfig(channels=(8,), head="flatten", pool="avg"),
       "resnet pool first": CNNConfig(channels=(8, 16), residual=True, pool_first=True),
       "cnn pool first": CNNConfig(channels=(8, 16), pool_first=True),
       "mlp": MLPConfig(hidden=(32, 16), batch_norm=True, dropout=0.1)}


def test_registry_covers_every_model_config():
    assert set(model_builders()) >= {"net", "cnn", "mlp"}


@pytest.mark.parametrize("name", NET_VARIANTS)
def test_default_net_parameter_counts(name):
    cfg, expected = NET_VARIANTS[name]
    model = build_model(cfg, (1, 28, 28), 10)
    if expected is not None:
        assert count_params(model) == expected


def test_width_multiplier_scales_channels_and_fc1():
    half = build_model(NetConfig(width=0.5), (1, 28, 28), 10)
    double = build_model(NetConfig(width=2), (1, 28, 28), 10)
    assert (half.conv1.out_channels, half.conv2.out_channels, half.fc1.out_features) == (5, 10, 25)
    assert (double.conv1.out_channels, double.fc1.in_features, double.fc1.out_features) == \
        (20, 640, 100)


def test_bn_dropout_order_follows_config():
    names = [n for n, _ in build_model(NetConfig(bn_conv1=True, conv1_dropout=0.3),
                                       (1, 28, 28), 10).named_children()]
    assert names.index("bn1") < names.index("drop1")
    names = [n for n, _ in build_model(NetConfig(bn_conv1=True, conv1_dropout=0.3,
                                                 bn_after_dropout=True),
                                       (1, 28, 28), 10).named_children()]
    assert names.index("drop1") < names.index("bn1")


@pytest.mark.parametrize("residual", [False, True])
def test_pool_first_moves_each_pool_between_its_conv_and_bn(residual):
    def kinds(pool_first):
        cfg = CNNConfig(channels=(8, 16), residual=residual, pool_first=pool_first)
        return [type(m).__name__ for m in build_model(cfg, (1, 28, 28), 10).children()]

    after, first = kinds(False), kinds(True)
    assert sorted(after) == sorted(first)  # the same layers, reordered
    pools = [i for i, k in enumerate(first) if k == "MaxPool2d"]
    assert len(pools) == 2
    assert all(first[i - 1] == "Conv2d" and first[i + 1] == "BatchNorm2d" for i in pools)
    assert all(after[i - 1] == "ReLU" for i, k in enumerate(after) if k == "MaxPool2d")


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_every_model_builds_and_learns_a_tiny_batch(name, shape):
    torch.manual_seed(0)
    model = build_model(ALL[name], shape, 10)
    x, y = torch.randn(16, *shape), torch.arange(16) % 10
    assert model(x).shape == (16, 10)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    first = None
    for _ in range(30):
        loss = F.cross_entropy(model(x), y)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert float(F.cross_entropy(model(x), y)) < first


def test_model_too_deep_for_input_is_a_clear_error():
    with pytest.raises(DlabError, match="does not fit"):
        build_model(CNNConfig(channels=(4,) * 6, head="flatten"), (1, 28, 28), 10)
