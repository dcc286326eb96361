"""The fused conv → max-pool 2 → ReLU kernel against the three PyTorch ops it replaces."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlab.config import resolve
from dlab.torch_engine import fused
from dlab.torch_engine.fused import ConvPoolReLU, fuse
from dlab.torch_engine.models import build_model

CPU = torch.device("cpu")
pytestmark = pytest.mark.skipif(fused.library() is None, reason="no C compiler to build the kernel")


def _reference(x, w, b):
    return F.relu(F.max_pool2d(F.conv2d(x, w, b), 2))


def _grads(fn, x, w, b, g):
    for t in (x, w, b):
        t.grad = None
    out = fn(x, w, b)
    out.backward(g)
    return out.detach(), x.grad, w.grad.clone(), b.grad.clone()


def _close(a, ref, rel=1e-5, what=""):
    assert a.shape == ref.shape, what
    err, bound = (a - ref).abs().max(), rel * ref.abs().max() + 1e-7
    assert err <= bound, f"{what}: max error {err:.3g} over {bound:.3g}"


@pytest.mark.parametrize("n,c,h,w,o,k", [
    (64, 1, 28, 28, 10, 5),   # the default net's conv1 on MNIST
    (7, 10, 12, 12, 20, 5),   # its conv2
    (3, 3, 32, 32, 10, 5),    # conv1 on CIFAR-10 (pooled width 14)
    (2, 2, 13, 11, 7, 3),     # odd conv output (the last row and column are dropped), odd O
    (1, 5, 9, 30, 9, 8),      # the largest kernel, 9 channels: blocks of output channels
])
def test_forward_and_gradients_equal_the_pytorch_ops(n, c, h, w, o, k):
    torch.manual_seed(0)
    x = torch.randn(n, c, h, w, requires_grad=True)
    weight = (torch.randn(o, c, k, k) / k).requires_grad_()
    bias = torch.randn(o).requires_grad_()
    g = torch.randn(n, o, (h - k + 1) // 2, (w - k + 1) // 2)
    got = _grads(fused._ConvPoolReLUFn.apply, x, weight, bias, g)
    want = _grads(_reference, x, weight, bias, g)
    for a, ref in zip(got, want):
        _close(a, ref)
    assert (got[0] == 0).any() and (got[0] > 0).any()  # ReLU cut some windows, not all


def test_ties_and_nan_follow_max_pool2d():
    """Flat images make every window a tie: the gradient still goes to one position each."""
    x = torch.zeros(2, 1, 12, 12, requires_grad=True)
    weight = torch.randn(4, 1, 5, 5, requires_grad=True)
    bias = torch.tensor([0.5, -0.5, 1.0, 0.0], requires_grad=True)
    g = torch.ones(2, 4, 4, 4)
    for a, ref in zip(_grads(fused._ConvPoolReLUFn.apply, x, weight, bias, g),
                      _grads(_reference, x, weight, bias, g)):
        _close(a, ref)
    x = torch.randn(1, 1, 12, 12)
    x[0, 0, 5, 5] = float("nan")
    out = fused._ConvPoolReLUFn.apply(x, weight.detach(), bias.detach())
    assert torch.equal(out.isnan(), _reference(x, weight.detach(), bias.detach()).isnan())
    assert out.isnan().any()


@pytest.mark.parametrize("shape_grad", ["expanded", "transposed"])
def test_a_non_contiguous_incoming_gradient(shape_grad):
    """`.sum()` passes an expanded gradient, a channels-last layer above a transposed one."""
    torch.manual_seed(2)
    x = torch.randn(4, 3, 14, 14, requires_grad=True)
    weight = torch.randn(6, 3, 5, 5, requires_grad=True)
    bias = torch.randn(6, requires_grad=True)
    g = (torch.ones(()).expand(4, 6, 5, 5) if shape_grad == "expanded"
         else torch.randn(4, 5, 5, 6).permute(0, 3, 1, 2))
    assert not g.is_contiguous()
    for a, ref in zip(_grads(fused._ConvPoolReLUFn.apply, x, weight, bias, g),
                      _grads(_reference, x, weight, bias, g)):
        _close(a, ref)


def test_the_extra_conv_variant_trains_as_the_unfused_net():
    """model.extra_conv puts a channels-last conv above conv2: its gradient reaches the kernel
    strided."""
    cfg = resolve({"data": {"dataset": "fashion-mnist"}, "model": {"extra_conv": True}})
    torch.manual_seed(3)
    plain = build_model(cfg.model, (1, 28, 28), 10).to(memory_format=torch.channels_last)
    model = build_model(cfg.model, (1, 28, 28), 10).to(memory_format=torch.channels_last)
    model.load_state_dict(plain.state_dict())
    assert fuse(model, CPU) == 2
    x = torch.randn(8, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (8,))
    for m in (plain, model):
        m.eval()
        F.cross_entropy(m(x), y).backward()
    for (name, a), b in zip(model.named_parameters(), plain.parameters()):
        _close(a.grad, b.grad, rel=1e-4, what=name)


def test_inf_and_nan_reach_the_gradients():
    torch.manual_seed(4)
    x = torch.randn(2, 2, 12, 12, requires_grad=True)
    weight = torch.randn(3, 2, 5, 5, requires_grad=True)
    bias = torch.randn(3, requires_grad=True)
    out = _reference(x, weight, bias).detach()
    g = torch.zeros_like(out)
    g[tuple(out.nonzero()[0])] = float("inf")  # at a window ReLU lets through
    got = _grads(fused._ConvPoolReLUFn.apply, x, weight, bias, g)
    want = _grads(_reference, x, weight, bias, g)
    for a, ref in zip(got[1:], want[1:]):  # the same entries inf, none NaN (padding stays out)
        assert torch.equal(a.isinf(), ref.isinf()) and not a.isnan().any()
        assert a.isinf().any()
    xn = x.detach().clone()
    xn[1, 0, 6, 6] = float("nan")  # NaN wins its window, and ReLU passes its gradient on
    got = _grads(fused._ConvPoolReLUFn.apply, xn, weight, bias, torch.ones_like(out))
    want = _grads(_reference, xn, weight, bias, torch.ones_like(out))
    assert got[0].isnan().any() and got[2].isnan().any() and want[2].isnan().any()
    assert torch.isfinite(got[3]).all() and torch.isfinite(want[3]).all()  # db: sums of g


def test_inputs_that_do_not_fit_the_layer_get_pytorchs_error():
    layer = ConvPoolReLU.from_conv(nn.Conv2d(1, 4, 5))
    with pytest.raises(RuntimeError):
        layer(torch.randn(2, 3, 28, 28))  # three channels into a one-channel layer
    odd = ConvPoolReLU(2, 4, 3, stride=2)  # built by hand: the kernel does not take stride 2
    x = torch.randn(1, 2, 20, 20)
    _close(odd(x), F.relu(F.max_pool2d(F.conv2d(x, odd.weight, odd.bias, stride=2), 2)).detach())


@pytest.mark.parametrize("n", [16, 13, 3])  # whole chunks of 8 images, a partial last one, one
def test_outputs_and_gradients_are_bit_identical_at_1_2_and_3_threads(n):
    torch.manual_seed(1)
    x = torch.randn(n, 10, 12, 12, requires_grad=True)
    weight = torch.randn(20, 10, 5, 5, requires_grad=True)
    bias = torch.randn(20, requires_grad=True)
    g = torch.randn(n, 20, 4, 4)
    threads = torch.get_num_threads()
    try:
        runs = {}
        for t in (1, 2, 3):
            torch.set_num_threads(t)
            runs[t] = [_grads(fused._ConvPoolReLUFn.apply, x, weight, bias, g) for _ in range(2)]
    finally:
        torch.set_num_threads(threads)
    names = ("out", "dx", "dw", "db")
    for t, (first, second) in runs.items():
        assert all(torch.equal(a, b) for a, b in zip(first, second)), t
        for name, a, b in zip(names, runs[1][0], first):
            assert torch.equal(a, b), f"{name} differs between 1 and {t} threads"
    for name, a, ref in zip(names, runs[1][0], _grads(_reference, x, weight, bias, g)):
        _close(a, ref, what=name)


def test_fuse_keeps_parameters_and_state_dict_of_the_default_net():
    cfg = resolve({"data": {"dataset": "fashion-mnist"}})
    torch.manual_seed(0)
    model = build_model(cfg.model, (1, 28, 28), 10)
    plain = build_model(cfg.model, (1, 28, 28), 10)
    plain.load_state_dict(model.state_dict())
    keys, params = list(model.state_dict()), list(model.parameters())
    assert fuse(model, CPU) == 2
    assert isinstance(model.conv1, ConvPoolReLU) and isinstance(model.conv2, ConvPoolReLU)
    assert isinstance(model.pool1, nn.Identity) and isinstance(model.relu2, nn.Identity)
    assert list(model.state_dict()) == keys
    assert all(a is b for a, b in zip(model.parameters(), params))
    model.eval(), plain.eval()
    x = torch.randn(5, 1, 28, 28)
    _close(model(x), plain(x))


@pytest.mark.parametrize("model,expected", [
    ({}, 2),
    ({"bn_conv1": True}, 1),           # BN between conv1 and its pool
    ({"conv1_dropout": 0.2}, 1),       # dropout there
    ({"width": 0.5}, 2),
    ({"remove": "conv2"}, 1),
    ({"name": "cnn"}, 0),              # conv → BN → ReLU → pool blocks
])
def test_fuse_only_where_conv_pool_relu_follow_each_other(model, expected):
    cfg = resolve({"data": {"dataset": "fashion-mnist"}, "model": model})
    assert fuse(build_model(cfg.model, (1, 28, 28), 10), CPU) == expected


def test_wide_inputs_and_other_devices_fall_back_to_the_pytorch_ops():
    conv = nn.Conv2d(1, 4, 5)
    layer = ConvPoolReLU.from_conv(conv)
    x = torch.randn(2, 1, 40, 40)  # pooled width 18: more than the kernel's 16
    _close(layer(x), _reference(x, conv.weight, conv.bias).detach())
    _close(layer(x[0]), _reference(x[0], conv.weight, conv.bias).detach())  # no batch dimension
    with pytest.raises(RuntimeError):  # smaller than the kernel: PyTorch's own error
        layer(torch.randn(2, 1, 4, 4))
    assert fuse(nn.Sequential(nn.Conv2d(1, 4, 5), nn.MaxPool2d(2), nn.ReLU()),
                torch.device("meta")) == 0


def test_without_a_compiler_models_keep_the_pytorch_ops(monkeypatch, tmp_path, capsys):
    fused.library.cache_clear()
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    try:
        assert fused.library() is None
        assert "no C compiler" in capsys.readouterr().err
        assert fuse(nn.Sequential(nn.Conv2d(1, 4, 5), nn.MaxPool2d(2), nn.ReLU()), CPU) == 0
        monkeypatch.setenv("CC", "cc")
        monkeypatch.setenv("DLAB_KERNELS", "off")
        fused.library.cache_clear()
        assert fused.library() is None
    finally:
        monkeypatch.undo()
        fused.library.cache_clear()
    assert fused.library() is not None


def test_a_failed_build_is_one_warning(monkeypatch, tmp_path, capsys):
    bad = tmp_path / "cc"
    bad.write_text("#!/bin/sh\necho 'cc: error: unsupported option' >&2\nexit 1\n")
    bad.chmod(0o755)
    fused.library.cache_clear()
    monkeypatch.setenv("CC", str(bad))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    try:
        assert fused.library() is None
        err = capsys.readouterr().err
        assert "could not build" in err and "unsupported option" in err
        assert not list((tmp_path / "cache").rglob("*.so*"))  # no half-written library left
    finally:
        monkeypatch.undo()
        fused.library.cache_clear()
