"""Mini-batch training of any numpy model with `params`, `loss(X, y, train, rng)`, `scores(X)`.

The solver shuffles each epoch with its own seeded generator, applies an optional
`transform(batch, train, rng)` (normalization, augmentation of training batches only), updates
every parameter with a named update rule, follows an lr schedule per epoch or per batch, keeps
histories (loss per iteration, lr, per-epoch train/val loss and accuracy) and saves resumable
checkpoints as `.npz` (no pickle: optimizer scalars are 0-d arrays, RNG state is JSON text).
Must not import torch.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from dlab.allocator import keep_freed_memory
from dlab.errors import DlabError
from dlab.numpy_engine.losses import get_loss
from dlab.numpy_engine.optim import get_update_rule
from dlab.numpy_engine.schedule import ScheduleConfig, lr_at
from dlab.runs import atomic_write_bytes


@dataclass(frozen=True)
class SolverConfig:
    update_rule: str = "momentum"
    lr: float = 1e-2
    momentum: float = 0.9
    batch_size: int = 100
    epochs: int = 10
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train_eval_size: int = 10000  # train accuracy/loss measured on this many training images
    time_budget_s: float = 0.0  # stop after the epoch that crosses this much training time (0: off)
    check_every: int = 0  # also measure train/val accuracy every this many iterations (0: off)
    seed: int = 0

    def validate(self) -> None:
        get_update_rule(self.update_rule)
        if not self.lr > 0:
            raise DlabError(f"learning rate {self.lr!r}; expected a positive number")
        if self.batch_size < 1 or self.epochs < 1:
            raise DlabError(f"batch_size {self.batch_size}, epochs {self.epochs}; expected >= 1")
        if not 0 <= self.momentum < 1:
            raise DlabError(f"momentum {self.momentum!r}; expected a value in [0, 1)")
        self.schedule.validate()


def _identity(batch, train, rng):
    return batch


class Solver:
    """Trains `model` on (X_train, y_train), evaluating on (X_val, y_val) after every epoch."""

    def __init__(self, model, train, val, cfg: SolverConfig,
                 transform: Callable = _identity, on_epoch: Callable | None = None):
        cfg.validate()
        self.model, self.cfg, self.transform, self.on_epoch = model, cfg, transform, on_epoch
        self.X_train, self.y_train = train
        self.X_val, self.y_val = val
        if len(self.X_train) != len(self.y_train) or len(self.X_val) != len(self.y_val):
            raise DlabError(f"train {len(self.X_train)}/{len(self.y_train)} or val "
                            f"{len(self.X_val)}/{len(self.y_val)} images/labels; expected equal")
        self.rule = get_update_rule(cfg.update_rule)
        self.optim_state = {k: {"lr": cfg.lr, "momentum": cfg.momentum} for k in model.params}
        self.rng = np.random.default_rng(cfg.seed)
        self.epoch = 0
        self.iteration = 0
        self.history: dict[str, list[float]] = {k: [] for k in (
            "loss", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "epoch_time_s",
            "check_iteration", "check_train_acc", "check_val_acc")}

    def step(self, X, y):
        """One update on a prepared batch; returns the batch loss."""
        lr = lr_at(self.cfg.lr, self.cfg.schedule, self.epoch, self.iteration)
        loss, grads = self.model.loss(X, y, train=True, rng=self.rng)
        for name, w in self.model.params.items():
            state = self.optim_state[name]
            state["lr"] = lr
            self.model.params[name], self.optim_state[name] = self.rule(w, grads[name], state)
        self.iteration += 1
        self.history["loss"].append(loss)
        self.history["lr"].append(lr)
        return loss

    def evaluate(self, X, y, batch_size=2000):
        """(mean loss, accuracy) in test mode; X is transformed without augmentation."""
        loss_fn = get_loss(self.model.cfg.loss) if hasattr(self.model, "cfg") else None
        total_loss, correct = 0.0, 0
        for i in range(0, len(X), batch_size):
            xb = self.transform(X[i:i + batch_size], False, None)
            scores = self.model.scores(xb)
            yb = y[i:i + batch_size]
            if loss_fn is not None:
                total_loss += loss_fn(scores, yb)[0] * len(yb)
            correct += int((scores.argmax(axis=1) == yb).sum())
        return total_loss / len(X), correct / len(X)

    def train_epoch(self):
        start = time.perf_counter()
        n, bs = len(self.X_train), self.cfg.batch_size
        order = self.rng.permutation(n)
        for i in range(0, n - bs + 1 if n >= bs else 1, bs):
            idx = order[i:i + bs]
            xb = self.transform(self.X_train[idx], True, self.rng)
            loss = self.step(xb, self.y_train[idx])
            if not np.isfinite(loss):
                raise FloatingPointError(f"loss became {loss} at iteration {self.iteration}")
            if self.cfg.check_every and self.iteration % self.cfg.check_every == 0:
                self._check_accuracy()
        sub = slice(0, min(self.cfg.train_eval_size, n))
        tl, ta = self.evaluate(self.X_train[sub], self.y_train[sub])
        vl, va = self.evaluate(self.X_val, self.y_val)
        for k, v in (("train_loss", tl), ("train_acc", ta), ("val_loss", vl), ("val_acc", va),
                     ("epoch_time_s", time.perf_counter() - start)):
            self.history[k].append(float(v))
        self.epoch += 1

    def _check_accuracy(self):
        sub = slice(0, min(self.cfg.train_eval_size, len(self.X_train)))
        self.history["check_iteration"].append(self.iteration)
        self.history["check_train_acc"].append(self.evaluate(self.X_train[sub],
                                                             self.y_train[sub])[1])
        self.history["check_val_acc"].append(self.evaluate(self.X_val, self.y_val)[1])

    def train(self, checkpoint: Path | None = None):
        """Train until `cfg.epochs`, checkpointing after every epoch when a path is given."""
        keep_freed_memory()
        while self.epoch < self.cfg.epochs:
            if self.cfg.time_budget_s and sum(self.history["epoch_time_s"]) >= self.cfg.time_budget_s:
                break
            self.train_epoch()
            if checkpoint is not None:
                self.save(checkpoint)
            if self.on_epoch is not None:
                self.on_epoch(self)
        return self.history

    def save(self, path: Path) -> None:
        """Atomically write params, optimizer state, counters, histories and RNG state (npz)."""
        arrays = {f"param/{k}": v for k, v in self.model.params.items()}
        for name, state in self.optim_state.items():
            for k, v in state.items():
                arrays[f"optim/{name}/{k}"] = np.asarray(v)
        meta = {"epoch": self.epoch, "iteration": self.iteration, "history": self.history,
                "rng": self.rng.bit_generator.state}
        arrays["meta"] = np.array(json.dumps(meta))
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(Path(path), buf.getvalue())

    def load(self, path: Path) -> None:
        """Restore a checkpoint written by `save` (arrays only: allow_pickle=False)."""
        with np.load(path, allow_pickle=False) as z:
            for key in z.files:
                if key.startswith("param/"):
                    name = key[6:]
                    if name not in self.model.params or z[key].shape != self.model.params[name].shape:
                        raise DlabError(f"checkpoint {str(path)!r} parameter {name!r} does not "
                                        f"match the model")
                    self.model.params[name] = z[key].copy()
                elif key.startswith("optim/"):
                    _, name, k = key.split("/", 2)
                    v = z[key]
                    self.optim_state[name][k] = v.item() if v.ndim == 0 else v.copy()
            meta = json.loads(str(z["meta"]))
        self.epoch, self.iteration = meta["epoch"], meta["iteration"]
        self.history = meta["history"]
        self.rng.bit_generator.state = meta["rng"]
