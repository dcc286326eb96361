"""The caption run's figures: curves, attention heatmaps, example videos as frame strips with
their references and generated captions. Each PNG's numbers go beside it as JSON.
Numpy + matplotlib; must not import torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: Path, data: Any) -> Path:
    fig.savefig(path, dpi=100)
    plt.close(fig)
    path.with_suffix(".json").write_text(json.dumps(data))
    return path


def plot_caption_curves(rows: Sequence[dict], path: Path) -> Path:
    """Training and validation loss, and validation CIDEr-D / BLEU-4 per epoch; in
    self-critical epochs (no training loss) the samples' mean CIDEr-D on the training videos."""
    epochs = [r["epoch"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    for key in ("loss", "val_loss"):
        a.plot(epochs, [r.get(key) for r in rows], marker=".", label=key)
    labels = {"scst_reward": "self-critical reward (training samples' CIDEr-D)"}
    for key in ("cider_d", "bleu4", "bleu1_course", "named_right", "scst_reward"):
        if any(r.get(key) is not None for r in rows):
            b.plot(epochs, [r.get(key) for r in rows], marker=".", label=labels.get(key, key))
    scst = [r["epoch"] for r in rows if r.get("scst_reward") is not None]
    if scst:  # where the self-critical epochs start (the validation loss then rises: the
        # decoder trades the references' likelihood for its best-scoring phrasing)
        for ax in (a, b):
            ax.axvline(scst[0] - 0.5, color="grey", ls=":", label="self-critical from here")
    a.set_xlabel("epoch"), b.set_xlabel("epoch"), a.legend(), b.legend(fontsize=8)
    a.set_title("cross-entropy per caption"), b.set_title("validation (greedy)")
    fig.tight_layout()
    keys = ("epoch", "loss", "val_loss", "cider_d", "bleu4", "bleu1_course", "named_right",
            "scst_reward")
    return _save(fig, path, [{k: r.get(k) for k in keys} for r in rows])


def _cut(text: str, width: int = 170) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def plot_attention(weights: Sequence[np.ndarray], words: Sequence[list[str]],
                   ids: Sequence[str], frame_stride: int, path: Path) -> Path:
    """One heatmap per video: generated word (rows, then <EOS>) x encoder step (frames)."""
    fig, axes = plt.subplots(1, len(weights), figsize=(4.2 * len(weights), 3.6), squeeze=False)
    for ax, w, ws, vid in zip(axes[0], weights, words, ids):
        ax.imshow(w, aspect="auto", cmap="viridis")
        ax.set_yticks(range(len(w)), (ws + ["<EOS>"])[:len(w)], fontsize=7)
        ax.set_xlabel(f"frame (x{frame_stride})")
        ax.set_title(vid, fontsize=8)
    fig.tight_layout()
    return _save(fig, path, {"ids": list(ids), "words": [list(w) for w in words],
                             "weights": [np.asarray(w).round(4).tolist() for w in weights]})


def plot_examples(frames_npz: Path, ids: Sequence[str], refs: Sequence[list[str]],
                  greedy: Sequence[str], beam: Sequence[str], folder: Path,
                  strip: int = 8, slots: Sequence[str] | None = None) -> dict[str, Path]:
    """`examples/<id>.png` per video: `strip` frames, three references, the greedy and beam
    captions, and what the digit slots read (`slots`, one line per video, when given).
    Returns {tag: png}."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    with np.load(frames_npz) as frames_of:
        for i, vid in enumerate(ids):
            frames = frames_of[vid]
            picks = np.linspace(0, len(frames) - 1, strip).round().astype(int)
            fig, axes = plt.subplots(1, strip, figsize=(1.3 * strip, 2.7))
            for ax, t in zip(axes, picks):
                ax.imshow(frames[t], cmap="gray", vmin=0, vmax=255)
                ax.set_axis_off()
                ax.set_title(f"t={t}", fontsize=7)
            # one reference a line, each cut to the strip's width (~180 characters at 7 pt)
            lines = [f"ref: {_cut(r)}" for r in refs[i][:3]]
            lines += [f"greedy: {_cut(greedy[i])}", f"beam: {_cut(beam[i])}"]
            if slots is not None:
                lines.append(f"digit slots read: {slots[i] or 'no digit'}")
            text = "\n".join(lines)
            fig.text(0.01, 0.02, text, fontsize=7, va="bottom")
            fig.subplots_adjust(left=0.01, right=0.99, top=0.9, bottom=0.35, wspace=0.05)
            name = vid.replace("/", "_")
            out[f"example/{name}"] = _save(fig, folder / f"{name}.png", {
                "id": vid, "frames": picks.tolist(), "references": refs[i],
                "greedy": greedy[i], "beam": beam[i],
                **({"slots": slots[i]} if slots is not None else {})})
    return out
