"""Gather what a study report shows from run directories only: never trains, never evaluates.

For every question of a study, each variant (one entry per seed) becomes a `VariantResult`
holding its status, the per-epoch metrics rows of `metrics.jsonl` (also for unfinished runs,
so partial curves show) and the summary numbers of `result.json`. Variants whose run directory
does not exist yet are "not run". Accuracies stay fractions in [0, 1] here; the original
submission's reference numbers stay in % as the study file gives them.

Must not import torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlab.results import metric as result_metric
from dlab.results import read_result
from dlab.runs import METRICS, check_run, read_json, read_jsonl
from dlab.studies import QuestionSpec, StudySpec, plan_study
from dlab.studies.plan import PlannedRun
from dlab.tasks import DEFAULT_TASK

NOT_RUN = "not run"


@dataclass(frozen=True)
class VariantResult:
    """One run (or eval/finetune step) of one variant, as found on disk."""

    label: str  # the variant's label, with "/seed=N" when the variant has several seeds
    variant: str  # the variant's label as the study file writes it
    kind: str  # "train" | "eval" | "finetune"
    status: str  # "finished", "diverged", "running", "interrupted", "pending", or NOT_RUN
    run_dir: Path
    metrics: tuple[dict[str, Any], ...]  # metrics.jsonl rows, one per epoch
    final_val_acc: float | None  # fraction; for eval steps the evaluated accuracy
    best_val_acc: float | None
    best_epoch: int | None
    final_val_loss: float | None
    seconds_per_epoch: float | None
    params: int | None
    dataset: str  # the dataset the numbers are measured on
    reference_pct: float | None  # the original submission's accuracy in %, if any
    tta: str = "none"  # test-time augmentation of the final number (train.tta); curves: 1 view
    task: str = DEFAULT_TASK
    result: dict[str, Any] | None = None  # result.json (schema 2), None while unfinished
    seed: int | None = None  # the seed of this entry when its variant has several
    damaged: str | None = None  # "<file>: <reason>" when a file of the run cannot be read

    @property
    def has_curves(self) -> bool:
        return bool(self.metrics)


@dataclass(frozen=True)
class QuestionResult:
    """A question with the results of all its variants, in the study file's order."""

    question: QuestionSpec
    variants: tuple[VariantResult, ...]


@dataclass(frozen=True)
class StudyResult:
    """A whole study as found under a runs root."""

    study: StudySpec
    root: Path  # <runs_root>/<study name>
    questions: tuple[QuestionResult, ...]

    def damaged(self) -> tuple[tuple[str, str], ...]:
        """(question/label, "<file>: <reason>") of every entry whose run has an unreadable file."""
        return tuple((f"{q.question.key}/{v.label}", v.damaged) for q in self.questions
                     for v in q.variants if v.damaged)

    def counts(self) -> dict[str, int]:
        """How many variant entries are in each status."""
        out: dict[str, int] = {}
        for q in self.questions:
            for v in q.variants:
                out[v.status] = out.get(v.status, 0) + 1
        return out


def _number(value: Any) -> float | None:
    """A finite float, or None (missing values and NaN/inf from diverged runs)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _status(item: PlannedRun) -> str:
    if not item.run_dir.exists():
        return NOT_RUN
    status = item.status()
    return NOT_RUN if status == "pending" else status


def _dataset(item: PlannedRun) -> str:
    config_path = item.run_dir / "config.json"
    if item.dataset:
        return item.dataset
    default = getattr(getattr(item.config, "data", None), "dataset", "")
    try:
        held = read_json(config_path) if config_path.exists() else {}
    except (OSError, ValueError):  # a damaged config.json: the planned one says the same
        held = {}
    data = held.get("data", {}) if isinstance(held, dict) else {}
    return str(data.get("dataset", default)) if isinstance(data, dict) else str(default)


def variant_result(item: PlannedRun, label: str, variant: str, reference: float | None
                   ) -> VariantResult:
    """Read one planned item's run directory (which may not exist yet)."""
    status = _status(item)
    bad = check_run(item.run_dir) if item.run_dir.is_dir() else None
    full = bad or read_result(item.run_dir)
    result = full if full is not None and full["status"] != "damaged" else {}
    try:
        metrics = tuple(read_jsonl(item.run_dir / METRICS)) if item.run_dir.exists() else ()
    except (OSError, ValueError):  # a damaged metrics file: the summary still shows
        metrics = ()
    final_acc = result_metric(result, "val_acc") if result else None
    final_loss = result_metric(result, "val_loss") if result else None
    best_acc = result_metric(result, "val_acc", "best") if result else None
    best_epoch = result.get("best_epoch")
    if not result and metrics:  # unfinished: summarize the epochs done so far
        accs = [(_number(r.get("val_acc")), r.get("epoch")) for r in metrics]
        accs = [(a, e) for a, e in accs if a is not None]
        if accs:
            best_acc, best_epoch = max(accs, key=lambda ae: ae[0])
            final_acc = accs[-1][0]
        final_loss = _number(metrics[-1].get("val_loss"))
    seconds = _number(result.get("seconds_per_epoch")) if result else None
    if seconds is None and metrics:
        times = [_number(r.get("time_s")) for r in metrics]
        times = [t for t in times if t is not None]
        seconds = sum(times) / len(times) if times else None
    params = result.get("params")
    if params is None and metrics:
        params = metrics[-1].get("params")
    return VariantResult(
        label=label, variant=variant, kind=item.kind, status=status, run_dir=item.run_dir,
        metrics=metrics, final_val_acc=final_acc,
        best_val_acc=best_acc if item.kind != "eval" else final_acc,
        best_epoch=best_epoch if isinstance(best_epoch, int) else None,
        final_val_loss=final_loss, seconds_per_epoch=seconds,
        params=params if isinstance(params, int) else None,
        dataset=_dataset(item), reference_pct=reference,
        tta=str(result.get("info", {}).get("tta", "none")) if result else "none",
        task=item.task, result=full,
        seed=_seed(item), damaged=None if bad is None else bad["damaged"])


def _seed(item: PlannedRun) -> int | None:
    train = getattr(item.config, "train", None)
    seed = getattr(train, "seed", getattr(item.config, "seed", None))
    return seed if isinstance(seed, int) else None


def collect_study(study: StudySpec, runs_root: Path) -> StudyResult:
    """Every question's variant results, read from `<runs_root>/<study name>/<key>/`."""
    plan = plan_study(study, Path(runs_root))
    questions = []
    for q in study.questions:
        rows = []
        for v in q.variants:
            items = plan.lookup(q.key, v.label)
            for item in items:
                label = v.label
                if len(items) > 1:
                    label = f"{v.label}/seed={_seed(item)}"
                rows.append(variant_result(item, label, v.label, q.reference.get(v.label)))
        questions.append(QuestionResult(q, tuple(rows)))
    return StudyResult(study, plan.root, tuple(questions))
