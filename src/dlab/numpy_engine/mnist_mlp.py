"""The numpy MNIST MLP experiment (task "numpy-mlp"): config, training with augmentation, run.

Images (N, 1, 28, 28) uint8 are scaled to [0, 1], augmented (training batches only), normalized
with (mean, std) and flattened to (N, 784). A run directory gets config.json, manifest.json,
metrics.jsonl (one row per epoch), checkpoints/last.npz (resumable), curves, confusion matrix,
the most common / most confident errors, and result.json last (`dlab.results`, primary val_acc;
as in the assignment, the validation set is the test set). Must not import torch.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlab.config import config_key, from_dict, merge
from dlab.errors import DlabError
from dlab.io import atomic_write_json
from dlab.numpy_engine.augment import AugmentConfig, augment_batch
from dlab.numpy_engine.mlp import MLP, MLPConfig
from dlab.numpy_engine.rundir import (resume_solver, start_or_check, train_or_diverge,
                                      write_numpy_result)
from dlab.numpy_engine.schedule import ScheduleConfig
from dlab.numpy_engine.solver import Solver, SolverConfig
from dlab.results import is_done, read_result
from dlab.runs import CONFIG, append_jsonl, create_run_dir, read_json, run_lock, seed_everything
from dlab.runs import timestamp

TASK_NAME = "numpy-mlp"
DEFAULT_AUGMENT = AugmentConfig(shift_px=2.0, rotate_deg=10.0, zoom=0.1, elastic_alpha=30.0,
                                elastic_sigma=5.0)


@dataclass(frozen=True)
class MnistMLPConfig:
    dataset: str = "mnist"
    mean: float = 0.1307
    std: float = 0.3081
    train_limit: int = 0  # first N training images only (0 = all): for tests
    test_limit: int = 0
    model: MLPConfig = field(default_factory=MLPConfig)
    solver: SolverConfig = field(default_factory=lambda: SolverConfig(
        update_rule="nesterov", lr=0.05, momentum=0.9, batch_size=128, epochs=30,
        schedule=ScheduleConfig(kind="exponential", per="epoch", gamma=0.9)))
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def validate(self) -> None:
        if self.dataset not in ("mnist", "fashion-mnist"):
            raise DlabError(f"dataset {self.dataset!r}; expected 'mnist' or 'fashion-mnist'")
        if not self.std > 0:
            raise DlabError(f"std {self.std!r}; expected a positive number")
        self.model.validate()
        self.solver.validate()
        self.augment.validate()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """The run's key: a digest of the values that differ from the defaults."""
        return config_key(self, TASK_NAME)


def resolve_mnist_mlp(data: dict) -> MnistMLPConfig:
    """The defaults overridden by the (nested, partial) `data`, validated; unknown keys, wrong
    types and bad values are one-line errors naming the key."""
    cfg = from_dict(MnistMLPConfig, merge(dataclasses.asdict(MnistMLPConfig()), data))
    cfg.validate()
    return cfg


def make_transform(cfg: MnistMLPConfig):
    """(batch uint8 (N,1,28,28), train, rng) -> float (N, 784) for the MLP."""
    dtype = np.dtype(cfg.model.dtype)

    def transform(batch, train, rng):
        x = batch.astype(dtype) / dtype.type(255)
        if train and cfg.augment.enabled():
            x = augment_batch(x, cfg.augment, rng)
        return ((x - dtype.type(cfg.mean)) / dtype.type(cfg.std)).reshape(len(x), -1)

    return transform


def _write_figures(run_dir: Path, solver: Solver, test, classes) -> dict:
    from dlab.numpy_engine import plots  # matplotlib: only when drawing

    transform = solver.transform
    model = solver.model
    scores = np.concatenate([model.scores(transform(test.images[i:i + 2000], False, None))
                             for i in range(0, len(test), 2000)])
    probs = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    pred = probs.argmax(axis=1)
    cm = plots.confusion_matrix(test.labels, pred, len(classes))
    plots.save_curves(solver.history, run_dir / "curves.png", "numpy MLP on MNIST")
    plots.save_loss_per_iteration(solver.history, run_dir / "loss_per_iteration.png")
    plots.save_confusion(cm, classes, run_dir / "confusion_matrix.png")
    common = plots.most_common_errors(cm)
    atomic_write_json(run_dir / "common_errors.json",
                      [{"true": t, "predicted": p, "count": c} for t, p, c in common])
    idx = plots.most_confident_errors(probs, test.labels)
    plots.save_image_grid(test.images[idx], [f"#{i} {test.labels[i]}→{pred[i]} "
                                             f"({probs[i, pred[i]]:.2f})" for i in idx],
                          run_dir / "confident_errors.png", "most confident test errors")
    by_pair = [int(np.flatnonzero((test.labels == t) & (pred == p))[0]) for t, p, _ in common]
    plots.save_image_grid(test.images[by_pair], [f"{t}→{p} ×{c}" for t, p, c in common],
                          run_dir / "common_errors.png", "most common confusions (one example)")
    return {"test_acc": float((pred == test.labels).mean()), "test_errors": int(cm.sum() -
                                                                                np.trace(cm))}


def run_mnist_mlp(cfg: MnistMLPConfig | None, data_dir=None, root: Path = Path("runs"),
                  resume: Path | None = None, log=print) -> Path:
    """Train one numpy MLP run in a fresh directory under `root` (or continue the run directory
    `resume`, whose config.json gives the config); returns the run directory."""
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / CONFIG).exists():
            raise DlabError(f"--resume {str(run_dir)!r}: no config.json there")
        cfg = from_dict(MnistMLPConfig, read_json(run_dir / CONFIG))
    cfg.validate()
    if resume is None:
        run_dir = create_run_dir(root, f"numpy-mlp-{cfg.dataset}-{timestamp()}")
    train_mnist_mlp(cfg, run_dir, data_dir, log)
    return run_dir


def train_mnist_mlp(cfg: MnistMLPConfig, run_dir: Path, data_dir=None, log=print) -> dict:
    """Bring the run in `run_dir` to done (fresh, resumed, or already finished); its result."""
    from dlab.data import load_dataset

    run_dir = Path(run_dir)
    with run_lock(run_dir):
        result = read_result(run_dir)
        if is_done(result):
            return result
        start_or_check(run_dir, cfg, TASK_NAME)
        seed_everything(cfg.solver.seed)
        train = load_dataset(cfg.dataset, "train", data_dir)
        test = load_dataset(cfg.dataset, "test", data_dir)
        if cfg.train_limit:
            train = train.subset(slice(0, cfg.train_limit))
        if cfg.test_limit:
            test = test.subset(slice(0, cfg.test_limit))
        model = MLP(cfg.model, rng=np.random.default_rng(cfg.solver.seed))

        def on_epoch(s: Solver):
            h = s.history
            row = {k: h[k][-1] for k in ("train_loss", "train_acc", "val_loss", "val_acc",
                                         "epoch_time_s")}
            row.update(epoch=s.epoch, lr=h["lr"][-1])
            append_jsonl(run_dir / "metrics.jsonl", row)
            log(f"epoch {s.epoch}/{cfg.solver.epochs} loss {row['train_loss']:.4f} "
                f"train {row['train_acc']:.4f} test {row['val_acc']:.4f} "
                f"({row['epoch_time_s']:.1f}s)")

        solver = Solver(model, (train.images, train.labels), (test.images, test.labels),
                        cfg.solver, make_transform(cfg), on_epoch)
        resume_solver(run_dir, solver, log)
        start = time.perf_counter()
        diverged = train_or_diverge(solver, run_dir)
        extra = {} if diverged else _write_figures(run_dir, solver, test, train.classes)
        info = {"dataset": cfg.dataset, "validation": "test",
                "validation_note": "the validation set is the test set (as in the assignment)",
                "augmented": cfg.augment.enabled(), "train_size": len(train),
                "test_size": len(test), "session_time_s": time.perf_counter() - start, **extra}
        return write_numpy_result(run_dir, cfg, TASK_NAME, solver, diverged=diverged,
                                  params=int(sum(p.size for p in model.params.values())),
                                  info=info)
