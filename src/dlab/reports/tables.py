"""The per-question results table, as rows of display strings shared by markdown and HTML.

Classification questions: variant, status, final validation accuracy (%), the test accuracy
(%) where runs evaluated the test set after a hold-out validation, best validation accuracy,
final validation loss, seconds per epoch, parameters, the original submission's number (%) and the
difference to it (these two only in a question where some variant has such a number). Eval steps
show their evaluated accuracy; missing numbers show as "—". A final accuracy measured with
test-time augmentation names it ("94.24 (flip-shift TTA)"); the
per-epoch numbers behind "best" are single-view. Questions of other tasks show the columns
their task declares (`Task.report_columns`). A variant with several seeds gets one row per
seed and a "mean ± sd" row.

Must not import torch.
"""

from __future__ import annotations

import statistics

from dlab.reports.collect import QuestionResult, VariantResult
from dlab.results import metric
from dlab.tasks import DEFAULT_TASK, get_task

REFERENCE_COLUMNS = ("original submission (%)", "Δ vs original (pp)")
COLUMNS = ("variant", "status", "final val acc (%)", "best val acc (%) @epoch",
           "final val loss", "s / epoch", "params", *REFERENCE_COLUMNS)
DASH = "—"


def _pct(fraction: float | None) -> str:
    return DASH if fraction is None else f"{fraction * 100:.2f}"


def _status(v: VariantResult) -> str:
    if v.kind == "eval":
        return f"{v.status} (eval on {v.dataset})"
    if v.kind == "finetune":
        return f"{v.status} (finetune on {v.dataset})"
    return v.status


def variant_row(v: VariantResult) -> tuple[str, ...]:
    """One classification table row of display strings, in COLUMNS order."""
    best = _pct(v.best_val_acc)
    if v.best_val_acc is not None and v.best_epoch is not None and v.kind != "eval":
        best = f"{best} @{v.best_epoch}"
    delta = DASH
    if v.reference_pct is not None and v.final_val_acc is not None:
        delta = f"{v.final_val_acc * 100 - v.reference_pct:+.2f}"
    final = _pct(v.final_val_acc)
    if v.final_val_acc is not None and v.tta != "none":
        final = f"{final} ({v.tta} TTA)"
    return (
        v.label,
        _status(v),
        final,
        best,
        DASH if v.final_val_loss is None else f"{v.final_val_loss:.4f}",
        DASH if v.seconds_per_epoch is None else f"{v.seconds_per_epoch:.1f}",
        DASH if v.params is None else f"{v.params:,}",
        DASH if v.reference_pct is None else f"{v.reference_pct:.2f}",
        delta,
    )


def _spread(values: list[float], percent: bool) -> str:
    scale = 100.0 if percent else 1.0
    mean = statistics.fmean(values) * scale
    sd = statistics.stdev(values) * scale if len(values) > 1 else 0.0
    return f"{mean:.2f} ± {sd:.2f}" if percent else f"{mean:.4g} ± {sd:.2g}"


def _mean_row(label: str, group: list[VariantResult], ncols: int,
              cells: dict[int, tuple[list[float], bool]]) -> tuple[str, ...]:
    row = [f"{label} (mean ± sd)", f"{len(group)} seeds"] + [DASH] * (ncols - 2)
    for col, (values, percent) in cells.items():
        if values:
            row[col] = _spread(values, percent)
    return tuple(row)


def _groups(qr: QuestionResult) -> list[list[VariantResult]]:
    """The question's entries grouped by variant, in order."""
    out: dict[str, list[VariantResult]] = {}
    for v in qr.variants:
        out.setdefault(v.variant, []).append(v)
    return list(out.values())


def has_reference(qr: QuestionResult) -> bool:
    """Whether some variant of `qr` has the original submission's number."""
    return any(v.reference_pct is not None for v in qr.variants)


def _task_of(qr: QuestionResult) -> str:
    tasks = {v.task for v in qr.variants}
    return tasks.pop() if len(tasks) == 1 else DEFAULT_TASK


def question_table(qr: QuestionResult) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """(column titles, rows) of one question's table."""
    task = get_task(_task_of(qr))
    if task.name == DEFAULT_TASK:
        # "test acc (%)" after the final validation accuracy, when any run evaluated the test
        # set after a hold-out validation (`test_acc`)
        test = {v.label: metric(v.result or {}, "test_acc", "final") for v in qr.variants}
        with_test = any(t is not None for t in test.values())

        def cells(row: tuple[str, ...], test_cell: str) -> tuple[str, ...]:
            return (*row[:3], test_cell, *row[3:]) if with_test else row

        rows = []
        for group in _groups(qr):
            rows += [cells(variant_row(v), _pct(test[v.label])) for v in group]
            if len(group) > 1:
                finals = [v.final_val_acc for v in group if v.final_val_acc is not None]
                bests = [v.best_val_acc for v in group if v.best_val_acc is not None]
                losses = [v.final_val_loss for v in group if v.final_val_loss is not None]
                tests = [test[v.label] for v in group if test[v.label] is not None]
                mean = _mean_row(group[0].variant, group, len(COLUMNS),
                                 {2: (finals, True), 3: (bests, True), 4: (losses, False)})
                rows.append(cells(mean, _spread(tests, True) if tests else DASH))
        columns = cells(COLUMNS, "test acc (%)")
        if not has_reference(qr):  # no original submission to compare with: no such columns
            n = len(columns) - len(REFERENCE_COLUMNS)
            columns, rows = columns[:n], [row[:n] for row in rows]
        return columns, rows
    cols = task.report_columns
    columns = ("variant", "status", *(c.title for c in cols), "s / epoch", "params")
    rows = []
    for group in _groups(qr):
        for v in group:
            values = [metric(v.result or {}, c.key, c.which) for c in cols]
            rows.append((v.label, _status(v),
                         *(DASH if x is None else (f"{100 * x:.2f}" if c.percent else f"{x:.4g}")
                           for x, c in zip(values, cols)),
                         DASH if v.seconds_per_epoch is None else f"{v.seconds_per_epoch:.1f}",
                         DASH if v.params is None else f"{v.params:,}"))
        if len(group) > 1:
            cells = {2 + i: ([x for x in (metric(v.result or {}, c.key, c.which) for v in group)
                              if x is not None], c.percent) for i, c in enumerate(cols)}
            rows.append(_mean_row(group[0].variant, group, len(columns), cells))
    return columns, rows


def question_rows(qr: QuestionResult) -> list[tuple[str, ...]]:
    return question_table(qr)[1]
