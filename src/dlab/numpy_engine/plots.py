"""Figures for numpy runs, drawn by `dlab.figures` (the torch engine's figures too).

Each `save_*` writes a PNG and its data beside it (`.json` or `.npz`) so that reports can
redraw figures without retraining. This module only adapts the numpy solver's history and
arrays to `dlab.figures`. Images are (N, C, H, W) uint8. Must not import torch.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from dlab import figures
from dlab.figures import confusion_matrix  # noqa: F401  (re-exported for the numpy runs)
from dlab.io import atomic_write_bytes, atomic_write_json


def _save_npz(path: Path, **arrays) -> None:
    """Write an .npz atomically (a reader never sees half a file)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(Path(path), buf.getvalue())


def most_common_errors(cm, top=10):
    """[(true, predicted, count)] of the most frequent off-diagonal cells."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(off.ravel())[::-1][:top]
    return [(int(i // cm.shape[1]), int(i % cm.shape[1]), int(off.ravel()[i]))
            for i in flat if off.ravel()[i] > 0]


def most_confident_errors(probs, y_true, top=36):
    """Indices of misclassified samples, most confident (highest predicted prob) first."""
    pred = probs.argmax(axis=1)
    return figures.most_confident_mistakes(y_true, pred, probs[np.arange(len(pred)), pred], top)


def save_curves(history, path: Path, title=""):
    """Train/val loss and accuracy per epoch (two panels), from the solver's history."""
    path = Path(path)
    keys = ("train_loss", "val_loss", "train_acc", "val_acc")
    atomic_write_json(path.with_suffix(".json"), {k: history[k] for k in keys})
    rows = [{"epoch": i + 1, "loss": tl, "val_loss": vl, "acc": ta, "val_acc": va}
            for i, (tl, vl, ta, va) in enumerate(zip(*(history[k] for k in keys)))]
    figures.plot_curves(rows, path, title)


def save_loss_per_iteration(history, path: Path):
    path = Path(path)
    atomic_write_json(path.with_suffix(".json"), {"loss": history["loss"]})
    figures.plot_series(history["loss"], path, xlabel="iteration", ylabel="training loss",
                        title="loss per iteration")


def save_confusion(cm, classes, path: Path):
    figures.plot_confusion(cm, classes, Path(path), title="confusion matrix (test)")


def save_image_grid(images, titles, path: Path, title="", cols=6):
    """A grid of uint8 images (N, C, H, W) with one caption each; data saved as .npz."""
    path = Path(path)
    _save_npz(path.with_suffix(".npz"), images=images, titles=np.array(titles, dtype=str))
    figures.plot_image_grid(images, titles, path, title, ncols=cols)


def save_filters(w, path: Path, title="first-layer filters"):
    """Conv filters (F, C, HH, WW) as an image grid, each scaled to its own range."""
    w = np.asarray(w, dtype=np.float64)
    _save_npz(Path(path).with_suffix(".npz"), weights=w)
    figures.plot_filters(w, Path(path), title=title)
