"""Render a built report as Markdown: figures are linked as relative PNG paths.

Must not import torch.
"""

from __future__ import annotations

from dlab.reports.document import ReportSpec
from dlab.reports.tables import question_table


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: ReportSpec) -> str:
    """The whole report as one Markdown document."""
    s = report.study
    lines = [f"# Study report: {s.study.name}", ""]
    if s.study.description:
        lines += [s.study.description.strip(), ""]
    lines += [f"- {line}" for line in report.notes] + [""]
    for section in report.sections:
        q = section.result.question
        lines += [f"## {q.key}: {q.title}", ""]
        if q.text:
            lines += [f"> {line}" if line else ">" for line in q.text.strip().splitlines()] + [""]
        columns, rows = question_table(section.result)
        lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
        lines.append("")
        for fig in section.figures:
            lines += [f"![{fig.spec.title}]({fig.relpath})", ""]
        for label, text in section.extras:
            lines += [f"**{label}**", "", text.strip(), ""]
        if q.explanation:
            lines += ["**What the knob does.**", "", q.explanation.strip(), ""]
    return "\n".join(lines).rstrip() + "\n"
