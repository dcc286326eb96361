"""The per-question results table, as rows of display strings shared by markdown and HTML.

Columns: variant, status, final and best validation accuracy (%), final validation loss,
seconds per epoch, parameters, the original submission's number (%) and the difference to it.
Eval steps show their evaluated accuracy; missing numbers show as "—". A final accuracy measured
with test-time augmentation names it ("94.24 (flip-shift TTA)"); the per-epoch numbers behind
"best" are single-view.

Must not import torch.
"""

from __future__ import annotations

from dlab.reports.collect import QuestionResult, VariantResult

COLUMNS = ("variant", "status", "final val acc (%)", "best val acc (%) @epoch",
           "final val loss", "s / epoch", "params", "original submission (%)", "Δ vs original (pp)")
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
    """One table row of display strings, in COLUMNS order."""
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


def question_rows(qr: QuestionResult) -> list[tuple[str, ...]]:
    return [variant_row(v) for v in qr.variants]
