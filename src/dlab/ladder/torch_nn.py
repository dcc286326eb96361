"""Rung 4: the MLP from `torch.nn` modules with a `torch.optim` optimizer.

nn.Linear stores weights as (out, in): the ladder's W (in, out) is transposed on the way in and
out. The L2 penalty is added to the loss (not weight_decay) so the reported loss matches.
"""

from __future__ import annotations

import torch
from torch import nn

from dlab.ladder.config import LadderConfig, LadderResult, lr_for_step

_ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "leaky_relu": nn.LeakyReLU}


def build(cfg: LadderConfig) -> nn.Sequential:
    m = cfg.model
    layers: list[nn.Module] = [nn.Dropout(m.input_dropout)] if m.input_dropout else []
    for d_in, d_out, p in zip(m.sizes[:-2], m.sizes[1:-1], m.dropout):
        layers += [nn.Linear(d_in, d_out), _ACTS[m.activation]()]
        if p:
            layers.append(nn.Dropout(p))
    layers.append(nn.Linear(m.sizes[-2], m.sizes[-1]))
    return nn.Sequential(*layers).to(getattr(torch, m.dtype))


def make_optimizer(cfg: LadderConfig, params):
    rule = cfg.update_rule
    if rule in ("sgd", "momentum", "nesterov"):
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.0 if rule == "sgd" else cfg.momentum,
                               nesterov=rule == "nesterov")
    if rule == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, alpha=0.99, eps=1e-8)
    if rule == "adagrad":
        return torch.optim.Adagrad(params, lr=cfg.lr, eps=1e-10)
    return torch.optim.Adam(params, lr=cfg.lr, eps=1e-8)


def linears(net: nn.Sequential) -> list[nn.Linear]:
    return [mod for mod in net if isinstance(mod, nn.Linear)]


def train_steps(cfg: LadderConfig, params, batches) -> LadderResult:
    cfg.validate()
    torch.manual_seed(cfg.seed)
    net = build(cfg)
    lins = linears(net)
    with torch.no_grad():
        for i, lin in enumerate(lins, start=1):
            lin.weight.copy_(torch.from_numpy(params[f"W{i}"].T.copy()))
            lin.bias.copy_(torch.from_numpy(params[f"b{i}"]))
    opt = make_optimizer(cfg, net.parameters())
    loss_fn = nn.CrossEntropyLoss()
    net.train()
    losses = []
    for step, (X, y) in enumerate(batches):
        for group in opt.param_groups:
            group["lr"] = lr_for_step(cfg, step)
        loss = loss_fn(net(torch.from_numpy(X)), torch.from_numpy(y))
        loss = loss + 0.5 * cfg.model.reg * sum((lin.weight ** 2).sum() for lin in lins)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    out = {}
    for i, lin in enumerate(lins, start=1):
        out[f"W{i}"] = lin.weight.detach().numpy().T.copy()
        out[f"b{i}"] = lin.bias.detach().numpy().copy()
    return LadderResult(losses, out)
