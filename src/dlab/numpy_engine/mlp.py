"""A config-driven fully connected net: affine → activation → dropout, repeated, → affine.

Shapes: inputs X (N, D) (images are flattened by the caller), scores (N, K). Parameters are
`W1, b1, ..., WL, bL` with W_l (D_{l-1}, D_l). Dropout rates are per hidden layer (plus an
optional input dropout); L2 regularization `reg` adds 0.5 * reg * sum W^2 (weights only).
The same `MLPConfig` drives every rung of the MLP ladder. Must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlab.errors import DlabError
from dlab.numpy_engine.init import get_init
from dlab.numpy_engine.layers import (affine_backward, affine_forward, check_dropout,
                                      dropout_backward, dropout_forward, get_activation)
from dlab.numpy_engine.losses import get_loss, l2_penalty

DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class MLPConfig:
    input_dim: int = 784
    hidden: tuple[int, ...] = (1024, 1024)
    num_classes: int = 10
    activation: str = "relu"
    dropout: tuple[float, ...] = (0.3, 0.3)  # after each hidden layer's activation
    input_dropout: float = 0.0
    init: str = "he"
    reg: float = 0.0
    loss: str = "softmax"
    dtype: str = "float32"

    def validate(self) -> None:
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise DlabError(f"mlp hidden sizes {list(self.hidden)}; expected positive widths")
        if len(self.dropout) != len(self.hidden):
            raise DlabError(f"mlp dropout {list(self.dropout)} has {len(self.dropout)} rates; "
                            f"expected one per hidden layer ({len(self.hidden)})")
        for p in (self.input_dropout, *self.dropout):
            check_dropout(p)
        get_activation(self.activation)
        get_init(self.init)
        get_loss(self.loss)
        if self.reg < 0:
            raise DlabError(f"mlp reg {self.reg!r}; expected a value >= 0")
        if self.dtype not in DTYPES:
            raise DlabError(f"mlp dtype {self.dtype!r}; expected one of {list(DTYPES)}")

    @property
    def sizes(self) -> list[int]:
        return [self.input_dim, *self.hidden, self.num_classes]


def init_mlp_params(cfg: MLPConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Weights from the configured init, zero biases, in the configured dtype."""
    cfg.validate()
    init = get_init(cfg.init)
    params = {}
    for i, (d_in, d_out) in enumerate(zip(cfg.sizes[:-1], cfg.sizes[1:]), start=1):
        params[f"W{i}"] = init((d_in, d_out), rng, dtype=np.dtype(cfg.dtype))
        params[f"b{i}"] = np.zeros(d_out, dtype=cfg.dtype)
    return params


class MLP:
    """The numpy MLP: `params` dict plus `loss(X, y)` → (loss, grads) and `scores(X)`."""

    def __init__(self, cfg: MLPConfig, params: dict[str, np.ndarray] | None = None,
                 rng: np.random.Generator | None = None):
        cfg.validate()
        self.cfg = cfg
        self.num_layers = len(cfg.hidden) + 1
        self.params = params if params is not None else init_mlp_params(
            cfg, rng if rng is not None else np.random.default_rng(0))
        self._act_fwd, self._act_bwd = get_activation(cfg.activation)

    def forward(self, X, train=False, rng=None):
        """Scores (N, K) and the caches for `backward`."""
        caches = []
        h, cache = dropout_forward(X, self.cfg.input_dropout, train, rng)
        caches.append(cache)
        for i in range(1, self.num_layers):
            h, c_aff = affine_forward(h, self.params[f"W{i}"], self.params[f"b{i}"])
            h, c_act = self._act_fwd(h)
            h, c_drop = dropout_forward(h, self.cfg.dropout[i - 1], train, rng)
            caches.append((c_aff, c_act, c_drop))
        L = self.num_layers
        scores, c_last = affine_forward(h, self.params[f"W{L}"], self.params[f"b{L}"])
        caches.append(c_last)
        return scores, caches

    def backward(self, dscores, caches):
        """Gradients of the data loss for every parameter (without the L2 term)."""
        grads = {}
        L = self.num_layers
        dh, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dscores, caches[-1])
        for i in range(L - 1, 0, -1):
            c_aff, c_act, c_drop = caches[i]
            dh = self._act_bwd(dropout_backward(dh, c_drop), c_act)
            dh, grads[f"W{i}"], grads[f"b{i}"] = affine_backward(dh, c_aff)
        return grads

    def loss(self, X, y, train=True, rng=None):
        """(data loss + L2 penalty, grads) for one batch."""
        scores, caches = self.forward(X, train, rng)
        data_loss, dscores = get_loss(self.cfg.loss)(scores, y)
        grads = self.backward(dscores, caches)
        names = [f"W{i}" for i in range(1, self.num_layers + 1)]
        reg_loss, reg_grads = l2_penalty([self.params[n] for n in names], self.cfg.reg)
        for n, g in zip(names, reg_grads):
            grads[n] += g
        return float(data_loss) + reg_loss, grads

    def scores(self, X, batch_size=2000):
        """Test-mode scores (no dropout), computed in chunks."""
        return np.concatenate([self.forward(X[i:i + batch_size])[0]
                               for i in range(0, len(X), batch_size)])
