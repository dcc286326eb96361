"""Drawing the analysis figures from their data (no computation here).

Every figure is a `FigureSpec` whose data is a list of panels:
    {"panels": [{"title", "xlabel", "ylabel", "logx", "logy",
                 "series": [{"label", "x", "y", "style": "line" | "dashed" | "scatter" | "marker",
                             "text": [per-point labels, optional]}]}]}
`draw` writes `<stem>.png` and, beside it, `<stem>.json` with exactly the data drawn.
Imports matplotlib (Agg backend); must not import torch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from dlab.analysis.result import FigureSpec, clean
from dlab.runs import atomic_write_bytes


def draw(fig_spec: FigureSpec, out_dir: Path) -> Path:
    """Render one figure to `out_dir/<stem>.png` (+ `.json` data); returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = fig_spec.data["panels"]
    cols = 2 if len(panels) == 4 else min(len(panels), 3)  # 2x2 reads better than 3+1
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.9 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        _draw_panel(ax, panel)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(fig_spec.title)
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / f"{fig_spec.stem}.png"
    fig.savefig(png, dpi=90)
    plt.close(fig)
    data = {"title": fig_spec.title, **clean(fig_spec.data)}
    atomic_write_bytes(out_dir / f"{fig_spec.stem}.json", json.dumps(data).encode())
    return png


def _draw_panel(ax, panel: dict) -> None:
    for s in panel["series"]:
        x, y, style = s["x"], s["y"], s.get("style", "line")
        if style == "scatter":
            ax.scatter(x, y, s=14, label=s.get("label"), alpha=0.8)
        elif style == "marker":
            ax.plot(x, y, "o-", ms=4, label=s.get("label"))
        else:
            ax.plot(x, y, "--" if style == "dashed" else "-", lw=1.3, label=s.get("label"))
        for xi, yi, text in zip(x, y, s.get("text") or []):
            ax.annotate(text, (xi, yi), fontsize=6, alpha=0.8)
    if panel.get("logx"):
        ax.set_xscale("log")
    if panel.get("logy"):
        ax.set_yscale("log")
    ax.set_title(panel.get("title", ""), fontsize=10)
    ax.set_xlabel(panel.get("xlabel", ""))
    ax.set_ylabel(panel.get("ylabel", ""))
    if any(s.get("label") for s in panel["series"]):
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def panel(title: str, xlabel: str, ylabel: str, series: list[dict], logx: bool = False,
          logy: bool = False) -> dict:
    """A panel dict (see the module docstring)."""
    return {"title": title, "xlabel": xlabel, "ylabel": ylabel, "series": series,
            "logx": logx, "logy": logy}


def train_test_panels(x, rows: list[dict], xlabel: str, logx: bool = False) -> list[dict]:
    """Loss and accuracy panels, train vs test, of per-model `rows` (keys loss, test_loss, acc,
    test_acc) plotted against `x` (one value per row)."""
    def pair(key: str) -> list[dict]:
        return [series("train", x, [r[key] for r in rows], "marker"),
                series("test", x, [r[f"test_{key}"] for r in rows], "marker")]

    return [panel("loss", xlabel, "cross-entropy", pair("loss"), logx=logx),
            panel("accuracy", xlabel, "accuracy", pair("acc"), logx=logx)]


def series(label: str, x, y, style: str = "line", text=None) -> dict:
    out = {"label": label, "x": clean(x), "y": clean(y), "style": style}
    if text is not None:
        out["text"] = list(text)
    return out
