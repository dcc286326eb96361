"""Run figures as PNG files, drawn from plain arrays: curves, confusion matrix, image grids,
first-layer filters. Each figure's numbers are saved beside it (JSON) by the caller or here.

Torch-free (numpy + matplotlib, Agg backend) so both engines use it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: Path, tight: bool = True) -> Path:
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _grid(n: int, ncols: int, cell_w: float, cell_h: float):
    """A figure of n cells (inches cell_w x cell_h) in rows of `ncols`, with fixed margins:
    tight_layout over dozens of axes costs more than drawing them."""
    nrows = (n + ncols - 1) // ncols
    height = cell_h * nrows + 0.8  # room for the figure title above the first row's captions
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell_w * ncols, height), squeeze=False)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.75 / height,
                        wspace=0.1, hspace=0.35)
    return fig, axes


def plot_curves(rows: Sequence[dict], path: Path, title: str = "") -> Path:
    """Loss and accuracy per epoch, train and validation, from metrics.jsonl rows."""
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        ax_loss.plot(epochs, [r.get(key) for r in rows], marker="o", label=label)
    for key, label in (("acc", "train"), ("val_acc", "validation")):
        ax_acc.plot(epochs, [100 * r[key] if r.get(key) is not None else None for r in rows],
                    marker="o", label=label)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_series(values: Sequence[float], path: Path, xlabel: str, ylabel: str,
                title: str = "") -> Path:
    """One thin line, e.g. the training loss per iteration."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(values, lw=0.5)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (K, K): row = true class, column = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def plot_confusion(cm: np.ndarray, classes: Sequence[str], path: Path, title: str = "") -> Path:
    """The confusion matrix with counts in the cells; its data goes to `<path>.json`."""
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * k, 0.8 + 0.55 * k))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(k), classes, rotation=45, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set(xlabel="predicted class", ylabel="true class",
           title=title or f"confusion matrix (accuracy {100 * np.trace(cm) / max(1, cm.sum()):.2f}%)")
    threshold = cm.max() / 2 if cm.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if cm[i, j] > threshold else "black")
    Path(path).with_suffix(".json").write_text(json.dumps(
        {"classes": list(classes), "matrix": cm.tolist()}))
    return _save(fig, path)


def plot_image_grid(images: np.ndarray, titles: Sequence[str], path: Path, title: str = "",
                    ncols: int = 8) -> Path:
    """uint8 images (N, C, H, W) in a grid with one caption each."""
    n = max(1, len(images))
    fig, axes = _grid(n, ncols, 1.5, 1.7)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            img = images[i]
            if img.shape[0] == 1:
                ax.imshow(img[0], cmap="gray", vmin=0, vmax=255)
            else:
                ax.imshow(np.transpose(img, (1, 2, 0)))
            ax.set_title(titles[i], fontsize=7)
    if title:
        fig.suptitle(title)
    return _save(fig, path, tight=False)


def most_confident_mistakes(y_true: np.ndarray, y_pred: np.ndarray, confidence: np.ndarray,
                            count: int = 24) -> np.ndarray:
    """Indices of the wrong predictions with the highest confidence, most confident first."""
    wrong = np.flatnonzero(y_true != y_pred)
    return wrong[np.argsort(-confidence[wrong], kind="stable")][:count]


def plot_filters(weights: np.ndarray, path: Path, title: str = "first-layer filters",
                 image_shape: tuple[int, int, int] | None = None) -> Path:
    """Conv filters (O, I, kh, kw), or the rows of a first Linear layer reshaped to `image_shape`."""
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim == 2 and image_shape is not None:
        w = w[:64].reshape(-1, *image_shape)
    n = min(len(w), 64)
    fig, axes = _grid(n, min(8, n), 1.2, 1.2)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        f = w[i]
        f = (f - f.min()) / (f.max() - f.min() + 1e-12)
        if f.shape[0] == 3:
            ax.imshow(np.transpose(f, (1, 2, 0)), interpolation="nearest")
        else:
            ax.imshow(f[0] if f.shape[0] == 1 else f.mean(0), cmap="gray", interpolation="nearest")
    fig.suptitle(title)
    return _save(fig, path, tight=False)
