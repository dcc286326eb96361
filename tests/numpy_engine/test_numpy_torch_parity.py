"""numpy layers, losses and update rules match torch.nn.functional / torch.optim (float64).

Only the tests import torch; the numpy engine itself stays torch-free.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from dlab.numpy_engine import conv, layers, losses, norm, optim, pool  # noqa: E402


def _t(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def _grads(out_t, inputs, dout):
    out_t.backward(torch.tensor(dout))
    return [i.grad.numpy() for i in inputs]


def test_conv_and_pool_match_torch():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((4, 3, 3, 3)), \
        rng.standard_normal(4)
    out, cache = conv.conv_forward_im2col(x, w, b, stride=2, pad=1)
    xt, wt, bt = _t(x), _t(w), _t(b)
    out_t = F.conv2d(xt, wt, bt, stride=2, padding=1)
    np.testing.assert_allclose(out, out_t.detach().numpy(), atol=1e-12)
    dout = rng.standard_normal(out.shape)
    for g, gt in zip(conv.conv_backward_im2col(dout, cache), _grads(out_t, (xt, wt, bt), dout)):
        np.testing.assert_allclose(g, gt, atol=1e-12)
    pooled, pcache = pool.max_pool_forward_fast(x, 2, 2, 2)
    xt = _t(x)
    pt = F.max_pool2d(xt, 2, 2)
    np.testing.assert_allclose(pooled, pt.detach().numpy(), atol=1e-12)
    dp = rng.standard_normal(pooled.shape)
    np.testing.assert_allclose(pool.max_pool_backward_fast(dp, pcache),
                               _grads(pt, (xt,), dp)[0], atol=1e-12)


@pytest.mark.parametrize("name,torch_fn", [
    ("relu", F.relu), ("tanh", torch.tanh), ("sigmoid", torch.sigmoid),
    ("leaky_relu", lambda t: F.leaky_relu(t, 0.01))])
def test_activations_match_torch(name, torch_fn):
    rng = np.random.default_rng(1)
    x = 3 * rng.standard_normal((5, 7))
    fwd, bwd = layers.get_activation(name)
    out, cache = fwd(x)
    xt = _t(x)
    ot = torch_fn(xt)
    np.testing.assert_allclose(out, ot.detach().numpy(), atol=1e-14)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(bwd(dout, cache), _grads(ot, (xt,), dout)[0], atol=1e-14)


def test_affine_batchnorm_and_losses_match_torch():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((6, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    out, cache = layers.affine_forward(x, w, b)
    xt, wt, bt = _t(x), _t(w.T.copy()), _t(b)
    ot = F.linear(xt, wt, bt)
    np.testing.assert_allclose(out, ot.detach().numpy(), atol=1e-13)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = layers.affine_backward(dout, cache)
    gx, gw, gb = _grads(ot, (xt, wt, bt), dout)
    np.testing.assert_allclose(dx, gx, atol=1e-13)
    np.testing.assert_allclose(dw, gw.T, atol=1e-13)
    np.testing.assert_allclose(db, gb, atol=1e-13)

    xs = rng.standard_normal((3, 2, 4, 5))
    gamma, beta = rng.standard_normal(2), rng.standard_normal(2)
    out, cache = norm.spatial_batchnorm_forward(xs, gamma, beta, {"mode": "train"})
    xt, gt, bt = _t(xs), _t(gamma), _t(beta)
    ot = F.batch_norm(xt, None, None, gt, bt, training=True, eps=1e-5)
    np.testing.assert_allclose(out, ot.detach().numpy(), atol=1e-12)
    dout = rng.standard_normal(out.shape)
    for g, gtorch in zip(norm.spatial_batchnorm_backward(dout, cache),
                         _grads(ot, (xt, gt, bt), dout)):
        np.testing.assert_allclose(g, gtorch, atol=1e-11)

    scores, y = rng.standard_normal((8, 5)), rng.integers(0, 5, 8)
    for fn, torch_loss in [
            (losses.softmax_loss, lambda s: F.cross_entropy(s, torch.tensor(y))),
            # torch's multi_margin_loss divides by the number of classes as well
            (losses.svm_loss, lambda s: 5 * F.multi_margin_loss(s, torch.tensor(y)))]:
        loss, dx = fn(scores, y)
        st = _t(scores)
        lt = torch_loss(st)
        lt.backward()
        assert abs(loss - lt.item()) < 1e-12
        np.testing.assert_allclose(dx, st.grad.numpy(), atol=1e-12)
    target = rng.standard_normal((8, 5))
    loss, dx = losses.mse_loss(scores, target)
    st = _t(scores)
    lt = F.mse_loss(st, torch.tensor(target))
    lt.backward()
    assert abs(loss - lt.item()) < 1e-12
    np.testing.assert_allclose(dx, st.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("rule,make", [
    ("sgd", lambda p: torch.optim.SGD(p, lr=0.1)),
    ("momentum", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    ("nesterov", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    ("rmsprop", lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-8)),
    ("adam", lambda p: torch.optim.Adam(p, lr=0.01)),
    ("adagrad", lambda p: torch.optim.Adagrad(p, lr=0.1, eps=1e-10))])
def test_update_rules_match_torch_optim(rule, make):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 3))
    wt = torch.tensor(w.copy(), requires_grad=True)
    opt = make([wt])
    state = {"lr": opt.param_groups[0]["lr"], "momentum": 0.9}
    for _ in range(5):
        dw = rng.standard_normal(w.shape)
        w, state = optim.get_update_rule(rule)(w, dw, state)
        wt.grad = torch.tensor(dw)
        opt.step()
    np.testing.assert_allclose(w, wt.detach().numpy(), rtol=1e-10, atol=1e-12)
