"""Plot data for the comparison figures, computed apart from drawing (as optuna's plots do).

`comparison_data(question, metric)` returns a `FigureSpec`: per variant the epoch numbers and
the metric's values (accuracies converted to %), plus level lines for eval steps (one number,
no epochs) and the original submission's reference accuracies. `dlab.reports.figures` draws a
`FigureSpec`; its `to_json()` is what lands beside each PNG, so every plotted number is kept.

Must not import torch or matplotlib.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from dlab.reports.collect import QuestionResult

# metric key in metrics.jsonl -> (figure title, y-axis label, is an accuracy)
METRICS: dict[str, tuple[str, str, bool]] = {
    "loss": ("Training loss", "cross-entropy loss (nats, mean per image)", False),
    "val_loss": ("Validation loss", "cross-entropy loss (nats, mean per image)", False),
    "acc": ("Training accuracy", "accuracy (%)", True),
    "val_acc": ("Validation accuracy", "accuracy (%)", True),
}


@dataclass(frozen=True)
class CurveSpec:
    """One variant's curve: y[i] measured after epoch x[i]."""

    label: str
    x: tuple[int, ...]
    y: tuple[float | None, ...]  # None where the value was not finite (a diverged epoch)
    status: str


@dataclass(frozen=True)
class LevelSpec:
    """A single number drawn as a horizontal line: an eval step or a reference accuracy."""

    label: str
    y: float
    kind: str  # "eval" | "reference"
    owner: str  # the variant label it belongs to (a reference line takes that curve's colour)


@dataclass(frozen=True)
class FigureSpec:
    """Everything one comparison figure shows."""

    question: str
    metric: str
    title: str
    xlabel: str
    ylabel: str
    curves: tuple[CurveSpec, ...]
    levels: tuple[LevelSpec, ...]
    missing: tuple[str, ...]  # labels with nothing to draw yet (legend still names them)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def is_empty(self) -> bool:
        return not self.curves and not self.levels


def _value(row: dict[str, Any], metric: str, percent: bool) -> float | None:
    value = row.get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return float(value) * 100.0 if percent else float(value)


def figure_metrics(qr: QuestionResult) -> dict[str, tuple[str, str, bool]]:
    """The metrics a question's figures plot: METRICS for classification, else the task's
    `report_figures` (key -> (title, y label, is an accuracy))."""
    from dlab.tasks import DEFAULT_TASK, get_task

    tasks = {v.task for v in qr.variants}
    if tasks <= {DEFAULT_TASK}:
        return METRICS
    out: dict[str, tuple[str, str, bool]] = {}
    for name in sorted(tasks):
        for key, title in get_task(name).report_figures:
            percent = key.endswith("acc")
            out.setdefault(key, (title, f"{title} (%)" if percent else title, percent))
    return out


def comparison_data(qr: QuestionResult, metric: str,
                    spec: tuple[str, str, bool] | None = None) -> FigureSpec:
    """The curves of every variant of `qr` for `metric` (a key of METRICS, or of `spec`)."""
    title, ylabel, percent = spec or METRICS[metric]
    curves, levels, missing = [], [], []
    for v in qr.variants:
        if v.kind == "eval":
            if metric == "val_acc" and v.final_val_acc is not None:
                levels.append(LevelSpec(f"{v.label} (eval on {v.dataset})",
                                        v.final_val_acc * 100.0, "eval", v.label))
            elif metric == "val_loss" and v.final_val_loss is not None:
                levels.append(LevelSpec(f"{v.label} (eval on {v.dataset})", v.final_val_loss,
                                        "eval", v.label))
            elif metric in ("val_acc", "val_loss"):
                missing.append(f"{v.label} ({v.status})")
            else:  # an eval step trains nothing; the legend still names it
                missing.append(f"{v.label} (eval step: no training curve)")
            continue
        rows = [r for r in v.metrics if isinstance(r.get("epoch"), int)]
        if rows:
            curves.append(CurveSpec(v.label, tuple(r["epoch"] for r in rows),
                                    tuple(_value(r, metric, percent) for r in rows), v.status))
        else:
            missing.append(f"{v.label} ({v.status})")
        if metric == "val_acc" and v.reference_pct is not None:
            levels.append(LevelSpec(f"{v.label}: original submission", v.reference_pct,
                                    "reference", v.label))
    return FigureSpec(qr.question.key, metric, f"{qr.question.key}: {title}", "epoch",
                      ylabel, tuple(curves), tuple(levels), tuple(missing))
