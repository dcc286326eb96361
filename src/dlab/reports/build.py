"""Build a study report (report.md, report.html, figures) from run directories only.

`build_report(study, runs_root, out_dir)` reads every planned run of the study (never trains or
evaluates anything), draws one comparison figure per question and metric into
`out_dir/figures/<question>_<metric>.png` with its data as JSON beside it, and writes
`report.md` (figures linked) and a self-contained `report.html` (figures embedded).

Must not import torch.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from dlab.reports.collect import NOT_RUN, StudyResult, collect_study
from dlab.reports.document import FigureFile, ReportSpec, SectionSpec
from dlab.reports.figures import draw_figure
from dlab.reports.htmldoc import render_html
from dlab.reports.markdown import render_markdown
from dlab.reports.series import comparison_data, figure_metrics
from dlab.reports.tables import has_reference
from dlab.runs import atomic_write_bytes
from dlab.studies import StudySpec, load_study
from dlab.tasks import get_task, resolve_any

REPORT_DIR = "report"


@dataclass(frozen=True)
class ReportResult:
    """Where a built report went and how complete it is."""

    markdown: Path
    html: Path
    figures: tuple[Path, ...]
    counts: dict[str, int]  # variant entries per status ("finished", "not run", ...)
    damaged: tuple[tuple[str, str], ...] = ()  # (question/label, "<file>: <reason>")


def default_out_dir(study: StudySpec, runs_root: Path) -> Path:
    """`<runs_root>/<study name>/report`: beside the study's runs, never inside one."""
    return Path(runs_root) / study.name / REPORT_DIR


def _notes(result: StudyResult) -> tuple[str, ...]:
    task, base = resolve_any(result.study.base)
    if task.name != "classification":
        validation = f"Runs of task {task.name!r}: {task.doc}."
    elif base.data.validation == "test":
        validation = ("Validation numbers are measured on each dataset's TEST split (the study "
                      "uses the test set as its validation set, as the original assignment does).")
    else:
        validation = (f"Validation numbers are measured on a held-out {base.data.val_size} "
                      f"training images (split seed {base.data.split_seed}); the test set is "
                      "evaluated once, after each run's last epoch (test acc).")
    counts = result.counts()
    total = sum(counts.values())
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    notes = [validation, f"Variant runs: {total} ({summary}); runs are read from {result.root}.",
             "Accuracies are in %; 'original submission' is the reference student's number."
             if any(has_reference(q) for q in result.questions) else "Accuracies are in %."]
    for label, detail in result.damaged():
        notes.append(f"Variant {label} is damaged (its numbers come from the files that can "
                     f"be read): {detail}.")
    if counts.get(NOT_RUN):
        notes.append("Variants marked 'not run' have no run directory yet: run `dlab study "
                     f"{result.study.name}` and rebuild this report.")
    return tuple(notes)


def _extras(qr, out_dir: Path, shown: dict[Path, str]) -> tuple[tuple[str, str], ...]:
    """(variant label, markdown) of every finished run whose task adds a section of its own;
    its links are made relative to the report, its headings sit below the question's. A run
    whose section an earlier question showed (`shown`: run directory -> where) points there."""
    out = []
    for v in qr.variants:
        section = get_task(v.task).report_section
        if section is not None and v.result is not None and v.result["status"] != "damaged":
            run_dir = Path(v.run_dir).resolve()
            if run_dir in shown:
                out.append((v.label, f"The same run as {shown[run_dir]}: its section is above."))
                continue
            text = section(run_dir)
            if text:
                text = _relink(text, run_dir, Path(out_dir).resolve())
                out.append((v.label, re.sub(r"^(#{1,3}) ", r"\1### ", text, flags=re.M)))
                shown[run_dir] = f"{qr.question.key}/{v.label}"
    return tuple(out)


def _relink(text: str, run_dir: Path, out_dir: Path) -> str:
    """Markdown link targets in a run's section (absolute under `run_dir`, or relative to it)
    rewritten relative to the report folder; URLs and anchors are left alone."""
    rel = os.path.relpath(run_dir, out_dir)

    def fix(match: re.Match) -> str:
        target = match.group(2)
        if re.match(r"^(#|[a-z]+:)", target):
            return match.group(0)
        path = Path(target)
        if path.is_absolute():
            try:
                path = path.relative_to(run_dir)
            except ValueError:
                return match.group(0)
        return f"{match.group(1)}({Path(rel) / path})"

    return re.sub(r"(\]\s*)\(([^)\s]+)\)", fix, text)


def build_report(study: StudySpec | str | Path, runs_root: Path, out_dir: Path | None = None
                 ) -> ReportResult:
    """Write report.md, report.html and figures for `study` from the runs under `runs_root`."""
    spec = study if isinstance(study, StudySpec) else load_study(study)
    result = collect_study(spec, Path(runs_root))
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(spec, runs_root)
    sections, pngs, shown = [], [], {}
    for qr in result.questions:
        figures = []
        for metric, fig_spec in figure_metrics(qr).items():
            data = comparison_data(qr, metric, fig_spec)
            rel = f"figures/{qr.question.key}_{metric}.png"
            png = draw_figure(data, out_dir / rel)
            figures.append(FigureFile(data, png, rel))
            pngs.append(png)
        sections.append(SectionSpec(qr, tuple(figures), _extras(qr, out_dir, shown)))
    report = ReportSpec(result, tuple(sections), _notes(result))
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    atomic_write_bytes(md_path, render_markdown(report).encode())
    atomic_write_bytes(html_path, render_html(report, out_dir).encode())
    return ReportResult(md_path, html_path, tuple(pngs), result.counts(), result.damaged())
