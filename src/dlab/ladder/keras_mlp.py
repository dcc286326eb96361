"""Rung 5: the MLP in Keras 3 on its torch backend, with the same knobs as the other rungs.

Dense kernels are (in, out) like the ladder's W. L2 uses `regularizers.L2(reg / 2)` so the
penalty is the engine's 0.5 * reg * sum W^2 (Keras adds it to the reported loss). Optimizers map
to their Keras twins; SGD, momentum and Nesterov follow the same formulas as the other rungs for
a constant lr (Keras keeps v = mu v - lr g). Keras' RMSprop puts epsilon inside the square
root and Adagrad starts its accumulator at 0.1 (set to ~0 here), so those two differ by O(eps).
"""

from __future__ import annotations

import os

from dlab.errors import DlabError
from dlab.ladder.config import LadderConfig, LadderResult, lr_for_step

LEAKY_SLOPE = 0.01  # dlab.numpy_engine.layers.leaky_relu_forward's default


def load_keras():
    """The keras module on its torch backend; a one-line error naming the `keras` extra when
    it cannot be imported."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError:
        raise DlabError("the keras rung needs keras>=3.3 (the 'keras' extra): pip install "
                        "'dlab[keras]'") from None
    if keras.backend.backend() != "torch":
        raise DlabError(f"Keras backend is {keras.backend.backend()!r}; expected 'torch' "
                        f"(set KERAS_BACKEND=torch before importing keras)")
    return keras


def build(cfg: LadderConfig, keras):
    m = cfg.model
    dt = m.dtype
    reg = keras.regularizers.L2(m.reg / 2) if m.reg else None
    layers = [keras.Input((m.input_dim,), dtype=dt)]
    if m.input_dropout:
        layers.append(keras.layers.Dropout(m.input_dropout, seed=cfg.seed, dtype=dt))
    for i, (width, p) in enumerate(zip(m.hidden, m.dropout)):
        if m.activation == "leaky_relu":  # Keras' default slope is 0.2; the engine's is 0.01
            layers += [keras.layers.Dense(width, kernel_regularizer=reg, dtype=dt),
                       keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE, dtype=dt)]
        else:
            layers.append(keras.layers.Dense(width, activation=m.activation,
                                             kernel_regularizer=reg, dtype=dt))
        if p:
            layers.append(keras.layers.Dropout(p, seed=cfg.seed + 1 + i, dtype=dt))
    layers.append(keras.layers.Dense(m.num_classes, kernel_regularizer=reg, dtype=dt))
    return keras.Sequential(layers)


def make_optimizer(cfg: LadderConfig, keras):
    opt = keras.optimizers
    rule = cfg.update_rule
    if rule in ("sgd", "momentum", "nesterov"):
        return opt.SGD(cfg.lr, momentum=0.0 if rule == "sgd" else cfg.momentum,
                       nesterov=rule == "nesterov")
    if rule == "rmsprop":
        return opt.RMSprop(cfg.lr, rho=0.99, epsilon=1e-8)
    if rule == "adagrad":
        return opt.Adagrad(cfg.lr, initial_accumulator_value=1e-12, epsilon=1e-10)
    return opt.Adam(cfg.lr, epsilon=1e-8)


def train_steps(cfg: LadderConfig, params, batches) -> LadderResult:
    cfg.validate()
    keras = load_keras()
    keras.utils.set_random_seed(cfg.seed)
    model = build(cfg, keras)
    L = len(cfg.model.hidden) + 1
    model.set_weights([params[f"{p}{i}"] for i in range(1, L + 1) for p in ("W", "b")])
    optimizer = make_optimizer(cfg, keras)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=cfg.model.dtype)
    model.compile(optimizer=optimizer, loss=loss)
    losses = []
    for step, (X, y) in enumerate(batches):
        optimizer.learning_rate = lr_for_step(cfg, step)
        losses.append(float(model.train_on_batch(X, y)))
    weights = model.get_weights()
    return LadderResult(losses, {f"{p}{i}": weights[2 * (i - 1) + j]
                                 for i in range(1, L + 1) for j, p in enumerate(("W", "b"))})
