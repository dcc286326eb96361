"""The numpy CIFAR-10 convnet experiment with the course recipe, written to a run directory.

Recipe: train 49,000 / val 1,000 (a seeded hold-out from the training set), conv 32 filters
7x7 same padding → ReLU → 2x2 max pool → affine → softmax, reg 0.001, SGD momentum 0.9,
lr 1e-4, batch 50, 1 epoch. Inputs are mean-image-centred pixels on the 0-255 scale with
weights drawn from N(0, 1e-3^2) (the course's preprocessing and init, for which its lr was
chosen). One addition to the course's recipe: the lr decays by `lr_decay` (0.997) per
iteration, to 5% of 1e-4 by the end of the epoch. At a constant 1e-4 the validation accuracy
swings 4-8 points between iterates and the epoch's last one decides the result (47.5% mean over
seeds 0-6 on the JPEG copy, against 55.3% with the decay; BENCHMARKS.md); `lr_decay = 1` is the
course's constant lr. Figures: loss per iteration, train/val accuracy during training,
first-layer filters. Must not import torch.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlab.data import holdout_split, load_dataset
from dlab.errors import DlabError
from dlab.numpy_engine import plots
from dlab.numpy_engine.convnet import ConvNet, ConvNetConfig
from dlab.numpy_engine.schedule import ScheduleConfig
from dlab.numpy_engine.solver import Solver, SolverConfig
from dlab.runs import (append_jsonl, atomic_write_json, create_run_dir, manifest, run_lock,
                       seed_everything, timestamp)


@dataclass(frozen=True)
class ConvNetRunConfig:
    epochs: int = 1
    train_size: int = 49000
    val_size: int = 1000
    seed: int = 0
    model: ConvNetConfig = field(default_factory=ConvNetConfig)
    update_rule: str = "momentum"
    lr: float = 1e-4
    lr_decay: float = 0.997  # lr factor per iteration (1 = the course's constant lr)
    momentum: float = 0.9
    batch_size: int = 50
    check_every: int = 100  # iterations between train/val accuracy checks


def _save_accuracy(history, path: Path):
    import matplotlib.pyplot as plt

    atomic_write_json(path.with_suffix(".json"), {k: history[k] for k in (
        "check_iteration", "check_train_acc", "check_val_acc")})
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(history["check_iteration"], history["check_train_acc"], "o-", label="train (1000)")
    ax.plot(history["check_iteration"], history["check_val_acc"], "o-", label="val (1000)")
    ax.set(xlabel="iteration", ylabel="accuracy", title="train / val accuracy")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_cifar_convnet(cfg: ConvNetRunConfig, data_dir=None, root: Path = Path("runs"),
                      log=print) -> Path:
    """Train the convnet once; returns the run directory (result.json written last)."""
    if not 0 < cfg.lr_decay <= 1:
        raise DlabError(f"lr_decay {cfg.lr_decay!r}; expected a factor per iteration in (0, 1]")
    schedule = ScheduleConfig(kind="exponential", per="batch", gamma=cfg.lr_decay)
    solver_cfg = SolverConfig(update_rule=cfg.update_rule, lr=cfg.lr, momentum=cfg.momentum,
                              batch_size=cfg.batch_size, epochs=cfg.epochs, seed=cfg.seed,
                              train_eval_size=1000, check_every=cfg.check_every,
                              schedule=schedule)
    solver_cfg.validate()
    cfg.model.validate()
    run_dir = create_run_dir(root, f"numpy-convnet-cifar10-{timestamp()}")
    with run_lock(run_dir):
        atomic_write_json(run_dir / "config.json", dataclasses.asdict(cfg))
        atomic_write_json(run_dir / "manifest.json", manifest({"engine": "numpy"}))
        seed_everything(cfg.seed)
        full = load_dataset("cifar10", "train", data_dir)
        train_idx, val_idx = holdout_split(len(full), cfg.val_size, cfg.seed)
        # The image-folder layout is ordered by class: subsample at random, never a prefix.
        train_idx = np.random.default_rng(cfg.seed).permutation(train_idx)[:cfg.train_size]
        dtype = np.dtype(cfg.model.dtype)
        mean_image = full.images[train_idx].mean(axis=0).astype(dtype)

        def transform(batch, train, rng):
            return batch.astype(dtype) - mean_image

        model = ConvNet(cfg.model, np.random.default_rng(cfg.seed))

        def on_epoch(s):
            row = {k: s.history[k][-1] for k in ("train_acc", "val_acc", "val_loss",
                                                 "epoch_time_s")}
            append_jsonl(run_dir / "metrics.jsonl", {"epoch": s.epoch, **row})
            log(f"epoch {s.epoch}: train {row['train_acc']:.3f} val {row['val_acc']:.3f} "
                f"({row['epoch_time_s']:.0f}s)")

        solver = Solver(model, (full.images[train_idx], full.labels[train_idx]),
                        (full.images[val_idx], full.labels[val_idx]), solver_cfg, transform,
                        on_epoch)
        start = time.perf_counter()
        solver.train(checkpoint=run_dir / "checkpoints" / "last.npz")
        h = solver.history
        plots.save_loss_per_iteration(h, run_dir / "loss_per_iteration.png")
        _save_accuracy(h, run_dir / "accuracy.png")
        plots.save_filters(model.params["W1"], run_dir / "filters.png")
        atomic_write_json(run_dir / "result.json", {
            "status": "finished", "engine": "numpy", "epochs": solver.epoch,
            "iterations": solver.iteration, "final_val_acc": h["val_acc"][-1],
            "first_lr": h["lr"][0], "last_lr": h["lr"][-1],
            "final_train_acc_1000": h["train_acc"][-1], "train_size": len(train_idx),
            "val_size": len(val_idx), "train_time_s": time.perf_counter() - start})
    return run_dir
