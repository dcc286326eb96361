"""The two-layer convnet: conv (same padding) → ReLU → 2x2 max pool → affine → softmax.

Shapes: X (N, C, H, W); W1 (F, C, k, k), b1 (F,); W2 (F * H/2 * W/2, K), b2 (K,); scores
(N, K). Uses the fast (im2col / stride-trick) conv and pool twins. L2 regularization `reg`
on W1 and W2. Must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlab.errors import DlabError
from dlab.numpy_engine.conv import conv_backward_im2col, conv_forward_im2col
from dlab.numpy_engine.init import get_init
from dlab.numpy_engine.layers import (affine_backward, affine_forward, relu_backward,
                                      relu_forward)
from dlab.numpy_engine.losses import l2_penalty, softmax_loss
from dlab.numpy_engine.pool import max_pool_backward_fast, max_pool_forward_fast


@dataclass(frozen=True)
class ConvNetConfig:
    input_shape: tuple[int, int, int] = (3, 32, 32)
    filters: int = 32
    kernel: int = 7
    num_classes: int = 10
    weight_scale: float = 1e-3  # std of the normal init; 0 means He init
    reg: float = 1e-3
    dtype: str = "float32"
    loss: str = "softmax"

    def validate(self) -> None:
        if self.kernel % 2 != 1:
            raise DlabError(f"convnet kernel {self.kernel}; expected an odd size (same padding)")
        c, h, w = self.input_shape
        if h % 2 or w % 2:
            raise DlabError(f"convnet input {h}x{w}; expected even sizes for 2x2 pooling")
        if self.filters < 1 or self.weight_scale < 0 or self.reg < 0:
            raise DlabError(f"convnet filters {self.filters}, weight_scale {self.weight_scale}, "
                            f"reg {self.reg}; expected positive/non-negative values")


class ConvNet:
    def __init__(self, cfg: ConvNetConfig, rng: np.random.Generator):
        cfg.validate()
        self.cfg = cfg
        c, h, w = cfg.input_shape
        shapes = {"W1": (cfg.filters, c, cfg.kernel, cfg.kernel),
                  "W2": (cfg.filters * (h // 2) * (w // 2), cfg.num_classes)}
        self.params = {}
        for name, shape in shapes.items():
            if cfg.weight_scale:
                self.params[name] = (cfg.weight_scale * rng.standard_normal(shape)).astype(cfg.dtype)
            else:
                self.params[name] = get_init("he")(shape, rng, np.dtype(cfg.dtype))
        self.params["b1"] = np.zeros(cfg.filters, dtype=cfg.dtype)
        self.params["b2"] = np.zeros(cfg.num_classes, dtype=cfg.dtype)

    def forward(self, X):
        pad = (self.cfg.kernel - 1) // 2
        a, c_conv = conv_forward_im2col(X, self.params["W1"], self.params["b1"], 1, pad)
        r, c_relu = relu_forward(a)
        p, c_pool = max_pool_forward_fast(r, 2, 2, 2)
        scores, c_aff = affine_forward(p, self.params["W2"], self.params["b2"])
        return scores, (c_conv, c_relu, c_pool, c_aff)

    def loss(self, X, y, train=True, rng=None):
        """(softmax loss + L2 penalty, grads) for one batch."""
        scores, (c_conv, c_relu, c_pool, c_aff) = self.forward(X)
        data_loss, dscores = softmax_loss(scores, y)
        grads = {}
        dp, grads["W2"], grads["b2"] = affine_backward(dscores, c_aff)
        dr = max_pool_backward_fast(dp, c_pool)
        da = relu_backward(dr, c_relu)
        _, grads["W1"], grads["b1"] = conv_backward_im2col(da, c_conv, compute_dx=False)
        reg_loss, reg_grads = l2_penalty([self.params["W1"], self.params["W2"]], self.cfg.reg)
        grads["W1"] += reg_grads[0]
        grads["W2"] += reg_grads[1]
        return float(data_loss) + reg_loss, grads

    def scores(self, X, batch_size=100):
        return np.concatenate([self.forward(X[i:i + batch_size])[0]
                               for i in range(0, len(X), batch_size)])
