"""Figures for numpy runs: the data behind each figure is computed apart from drawing it.

Each `save_*` writes a PNG (matplotlib, Agg backend) and its data beside it (`.json` or
`.npz`) so that reports can redraw figures without retraining. Images are (N, C, H, W) uint8.
Must not import torch.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dlab.runs import atomic_write_json  # noqa: E402


def confusion_matrix(y_true, y_pred, num_classes):
    """(K, K) counts, rows = true class, columns = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


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
    wrong = np.flatnonzero(pred != y_true)
    return wrong[np.argsort(-probs[wrong, pred[wrong]])][:top]


def save_curves(history, path: Path, title=""):
    """Train/val loss and accuracy per epoch (two panels)."""
    path = Path(path)
    keys = ("train_loss", "val_loss", "train_acc", "val_acc")
    atomic_write_json(path.with_suffix(".json"), {k: history[k] for k in keys})
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(epochs, history["train_loss"], label="train")
    a.plot(epochs, history["val_loss"], label="test/val")
    a.set(xlabel="epoch", ylabel="loss", title="loss")
    b.plot(epochs, history["train_acc"], label="train")
    b.plot(epochs, history["val_acc"], label="test/val")
    b.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (a, b):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_loss_per_iteration(history, path: Path):
    path = Path(path)
    atomic_write_json(path.with_suffix(".json"), {"loss": history["loss"]})
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(history["loss"], lw=0.5)
    ax.set(xlabel="iteration", ylabel="training loss", title="loss per iteration")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_confusion(cm, classes, path: Path):
    path = Path(path)
    atomic_write_json(path.with_suffix(".json"), {"classes": list(classes),
                                                   "matrix": cm.tolist()})
    fig, ax = plt.subplots(figsize=(6, 5.5))
    ax.imshow(np.log1p(cm), cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xlabel="predicted",
           ylabel="true", title="confusion matrix (test)")
    ax.set_xticklabels(classes, rotation=90)
    ax.set_yticklabels(classes)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_image_grid(images, titles, path: Path, title="", cols=6):
    """A grid of uint8 images (N, C, H, W) with one caption each; data saved as .npz."""
    path = Path(path)
    np.savez(path.with_suffix(".npz"), images=images, titles=np.array(titles, dtype=str))
    rows = max(1, -(-len(images) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.8), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, cap in zip(axes.flat, images, titles):
        img = img.transpose(1, 2, 0)
        ax.imshow(img[..., 0] if img.shape[2] == 1 else img, cmap="gray")
        ax.set_title(cap, fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_filters(w, path: Path, title="first-layer filters"):
    """Conv filters (F, C, HH, WW) as an image grid, each scaled to [0, 255] on its own."""
    w = np.asarray(w, dtype=np.float64)
    lo = w.min(axis=(1, 2, 3), keepdims=True)
    hi = w.max(axis=(1, 2, 3), keepdims=True)
    imgs = (255 * (w - lo) / np.maximum(hi - lo, 1e-12)).astype(np.uint8)
    np.savez(Path(path).with_suffix(".npz"), weights=w)
    save_image_grid(imgs, [str(i) for i in range(len(w))], path, title=title, cols=8)
    np.savez(Path(path).with_suffix(".npz"), weights=w, images=imgs)
