"""Draw a `FigureSpec` as a labelled PNG with matplotlib's Agg backend, its data as JSON beside it.

Every variant gets a legend entry: curves as lines with markers, eval steps and the original
submission's numbers as dashed/dotted horizontal lines, and variants with nothing to draw yet as
an empty legend entry marked with their status, so the legend always names every variant. When
every curve is one number at the same epoch (runs of one epoch), a line has nothing to join:
the variants are bars, each labelled with its value.

Must not import torch.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: reports are built on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from dlab.reports.series import FigureSpec  # noqa: E402
from dlab.runs import atomic_write_bytes, atomic_write_json  # noqa: E402

_LEVEL_STYLE = {"eval": "--", "reference": ":"}


def draw_figure(spec: FigureSpec, png_path: Path, dpi: int = 100) -> Path:
    """Write `spec` as a PNG at `png_path` and its data as `<same stem>.json`; returns the PNG."""
    png_path = Path(png_path)
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    try:
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        color_of: dict[str, str] = {}
        bars = _single_epoch(spec)
        for i, curve in enumerate(spec.curves):
            color = colors[i % len(colors)]
            color_of[curve.label] = color
            y = [float("nan") if v is None else v for v in curve.y]
            suffix = "" if curve.status == "finished" else f" ({curve.status})"
            if bars is None:
                ax.plot(curve.x, y, marker="o", markersize=3, color=color,
                        label=f"{curve.label}{suffix}")
            else:
                drawn = ax.bar([i], y, width=0.6, color=color, label=f"{curve.label}{suffix}")
                ax.bar_label(drawn, fmt="%.4g", fontsize=8)
        if bars is not None:
            ax.set_xticks(range(len(spec.curves)), [c.label for c in spec.curves], fontsize=8)
        for j, level in enumerate(spec.levels):
            color = color_of.get(level.owner, colors[(len(spec.curves) + j) % len(colors)])
            ax.axhline(level.y, linestyle=_LEVEL_STYLE[level.kind], color=color, linewidth=1.2,
                       label=f"{level.label} = {level.y:.4g}")
        handles, labels = ax.get_legend_handles_labels()
        for name in spec.missing:
            handles.append(Line2D([], [], linestyle="none"))
            labels.append(name)
        if spec.is_empty():
            ax.text(0.5, 0.5, "no run has finished an epoch yet", ha="center", va="center",
                    transform=ax.transAxes, color="gray")
        ax.set_title(spec.title)
        ax.set_xlabel(spec.xlabel if bars is None else f"variant (after {spec.xlabel} {bars})")
        ax.set_ylabel(spec.ylabel)
        ax.grid(True, alpha=0.3)
        ax.set_axisbelow(True)
        if spec.curves and bars is None:
            ax.xaxis.get_major_locator().set_params(integer=True)
        if labels:
            ax.legend(handles, labels, fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5),
                      frameon=False)
        fig.tight_layout()
        png_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = png_path.with_name(f".{png_path.name}.tmp")
        fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
        atomic_write_bytes(png_path, tmp.read_bytes())
        tmp.unlink()
    finally:
        plt.close(fig)
    atomic_write_json(png_path.with_suffix(".json"), spec.to_json())
    return png_path


def _single_epoch(spec: FigureSpec) -> int | None:
    """The one epoch every curve was measured at, when each has a single point there."""
    xs = {curve.x for curve in spec.curves}
    if len(xs) != 1:
        return None
    (x,) = xs
    return x[0] if len(x) == 1 else None
