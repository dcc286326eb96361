"""Task "analysis": one optimization / generalization experiment (`dlab.analysis.experiments`).

Config: `dlab.analysis.registry.AnalysisConfig` — `experiment` (its name) and `settings` (its
sizes, validated by the experiment's own config class; `full = true` in the plain data starts
from the original sizes). Plain data: `{"experiment": "grad-norm", "settings": {"iterations":
300}}`. Primary metric: `passed` (1 when the expected phenomenon showed, else 0), maximised;
the verdict, its measured values, the figures and the numbers are in result.json's info, and
`report_section` gives the experiment's markdown section. The task runs itself; seeds set
`settings.seed`. Must not import torch at module level (resolving loads the experiments,
which do).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlab.analysis.registry import TASK_NAME, AnalysisConfig, resolve_analysis
from dlab.tasks.base import Column, RunContext, Task


def _run(cfg: AnalysisConfig, ctx: RunContext) -> dict[str, Any]:
    from dlab.analysis.runner import run_analysis

    log = print if ctx.progress else (lambda message: None)
    return run_analysis(cfg, ctx.run_dir, ctx.data_dir, log)


def _describe(cfg: AnalysisConfig) -> dict[str, Any]:
    return {"experiment": cfg.experiment}


def _report_section(run_dir: Path) -> str | None:
    from dlab.analysis.runner import report_section

    return report_section(run_dir)


TASK = Task(
    name=TASK_NAME,
    config_class=AnalysisConfig,
    primary="passed",
    direction="max",
    resolve=resolve_analysis,
    open=None,
    run=_run,
    describe=_describe,
    report_columns=(Column("passed", "phenomenon shown (1/0)", "final"),),
    report_section=_report_section,
    seed_key="settings.seed",
    doc="an optimization / generalization experiment; passed = its phenomenon showed",
)
