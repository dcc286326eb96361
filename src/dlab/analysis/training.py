"""Epoch loops for the analysis experiments: M same-architecture classifiers trained batched.

`train_classifiers` trains M copies (seeded seed, seed+1, ...) of one net on an in-memory
`TensorSplit` with minibatches, each model drawing its own shuffle from its own generator, and
evaluates all of them on the train and test sets after every epoch (one host sync per epoch).
Imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from dlab.analysis.batched import BatchedTrainer, OptimMath, Params, stack_params
from dlab.analysis.datasets import TensorSplit
from dlab.analysis.nets import init_copies


@dataclass
class HistoryResult:
    """Per-epoch metrics, each a list over epochs of lists over models."""

    loss: list = field(default_factory=list)
    acc: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)

    def last(self, key: str) -> list[float]:
        return getattr(self, key)[-1]

    def per_model(self, key: str, index: int) -> list[float]:
        return [row[index] for row in getattr(self, key)]


def epoch_batches(n: int, batch_size: int, generators: list[torch.Generator]) -> torch.Tensor:
    """Index batches for one epoch, one shuffle per model: (steps, M, batch_size).

    Each model gets its own permutation; the ragged last batch is dropped so that all models and
    steps share one batch shape (vmap needs equal shapes).
    """
    perms = torch.stack([torch.randperm(n, generator=g) for g in generators])
    steps = n // batch_size
    return perms[:, :steps * batch_size].reshape(len(generators), steps, batch_size).transpose(0, 1)


def train_classifiers(build: Callable[[], torch.nn.Module], count: int, seed: int,
                      train: TensorSplit, test: TensorSplit, epochs: int, batch_size: int,
                      optim: OptimMath, on_epoch: Callable[[int, Params], None] | None = None,
                      params: Params | None = None, log: Callable[[str], None] = lambda m: None
                      ) -> tuple[torch.nn.Module, Params, HistoryResult]:
    """Train `count` classifiers batched; returns (base module, final stacked params, history).

    Args:
        build: makes one fresh model (called `count` times under seeds seed, seed+1, ...).
        on_epoch: called as on_epoch(epoch, params) after each epoch (epoch 0 = before training).
        params: start from these stacked parameters instead of fresh initializations.
    """
    models = init_copies(build, count, seed)
    base, init = stack_params(models)
    trainer = BatchedTrainer(base, params if params is not None else init, optim, F.cross_entropy)
    gens = [torch.Generator().manual_seed(10_000 + seed + i) for i in range(count)]
    history = HistoryResult()
    if on_epoch:
        on_epoch(0, trainer.params)
    bs = min(batch_size, len(train.y))
    for epoch in range(1, epochs + 1):
        for idx in epoch_batches(len(train.y), bs, gens):
            trainer.step(train.x[idx], train.y[idx], per_model_batches=True)
        _record(history, trainer, train, test)
        log(f"epoch {epoch}/{epochs}: loss {_fmt(history.loss[-1])} "
            f"test_acc {_fmt(history.test_acc[-1])}")
        if on_epoch:
            on_epoch(epoch, trainer.params)
    return base, trainer.params, history


def _record(history: HistoryResult, trainer: BatchedTrainer, train: TensorSplit,
            test: TensorSplit) -> None:
    loss, acc = trainer.evaluate(train.x, train.y)
    test_loss, test_acc = trainer.evaluate(test.x, test.y)
    history.loss.append(loss.tolist())
    history.acc.append(acc.tolist())
    history.test_loss.append(test_loss.tolist())
    history.test_acc.append(test_acc.tolist())


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values[:4]) + (" ...]" if len(values) > 4 else "]")
