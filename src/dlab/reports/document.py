"""The built report as data: sections per question with their drawn figures and notes.

Renderers (`markdown`, `htmldoc`) turn a `ReportSpec` into text; nothing here draws or reads
run directories. Must not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dlab.reports.collect import QuestionResult, StudyResult
from dlab.reports.series import FigureSpec


@dataclass(frozen=True)
class FigureFile:
    """A drawn figure: its data, the PNG on disk, and the PNG's path relative to the report."""

    spec: FigureSpec
    path: Path
    relpath: str


@dataclass(frozen=True)
class SectionSpec:
    """One question's part of the report."""

    result: QuestionResult
    figures: tuple[FigureFile, ...]
    extras: tuple[tuple[str, str], ...] = ()  # (variant label, markdown from its task)


@dataclass(frozen=True)
class ReportSpec:
    """A whole report: the study's results, one section per question, general notes."""

    study: StudyResult
    sections: tuple[SectionSpec, ...]
    notes: tuple[str, ...]  # e.g. which split served as validation, how many runs are missing
