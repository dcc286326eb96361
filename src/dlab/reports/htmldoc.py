"""Render a built report as one self-contained HTML file.

Figures are embedded as base64 `data:` URIs and the CSS is inline, so the file can be mailed or
opened offline; it loads nothing from anywhere else and runs no scripts. A task's own report
section (markdown) is rendered by `mdhtml.markdown_html`: its tables as tables, its images
embedded like the figures.
Must not import torch.
"""

from __future__ import annotations

import html
from pathlib import Path

from dlab.reports.document import FigureFile, ReportSpec
from dlab.reports.mdhtml import embedded_img, markdown_html, table_html
from dlab.reports.tables import question_table

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 70rem; padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .3rem; }
h2 { margin-top: 2.5rem; border-bottom: 1px solid #bbb; }
blockquote { margin: 0 0 1rem 0; padding: .4rem 1rem; border-left: 4px solid #89a;
             background: #f4f6f8; white-space: pre-wrap; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .9rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }
th { background: #eef; } td:first-child, table.results td:nth-child(2) { text-align: left; }
tr.not-run td { color: #888; font-style: italic; } tr.diverged td { color: #a00; }
.figures { display: flex; flex-wrap: wrap; gap: .5rem; }
.figures img { max-width: 100%; width: 34rem; border: 1px solid #ddd; }
.explanation { background: #fbfbf2; border: 1px solid #e4e4c8; padding: .5rem 1rem;
               white-space: pre-wrap; }
.task-section img { max-width: 100%; border: 1px solid #ddd; vertical-align: middle; }
.task-section code { background: #f4f4f4; padding: 0 .2rem; }
.task-section pre { background: #f4f4f4; padding: .5rem; overflow-x: auto; }
.missing-image { color: #a00; font-style: italic; }
"""


def _img(fig: FigureFile) -> str:
    return embedded_img(fig.path.read_bytes(), "image/png", fig.spec.title)


def _row_class(status: str) -> str:
    if status.startswith("not run"):
        return "not-run"
    return "diverged" if status.startswith("diverged") else ""


def render_html(report: ReportSpec, folder: Path | None = None) -> str:
    """The whole report as one HTML document with everything inline. `folder` is where the
    report is written: the relative image links of task sections resolve against it (as in
    report.md) and the images are embedded; without it they show their alt text."""
    s = report.study
    esc = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>Study report: {esc(s.study.name)}</title>",
           f"<style>{_CSS}</style></head><body>",
           f"<h1>Study report: {esc(s.study.name)}</h1>"]
    if s.study.description:
        out.append(f"<p>{esc(s.study.description.strip())}</p>")
    out.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in report.notes) + "</ul>")
    for section in report.sections:
        q = section.result.question
        out.append(f'<section id="{esc(q.key)}"><h2>{esc(q.key)}: {esc(q.title)}</h2>')
        if q.text:
            out.append(f"<blockquote>{esc(q.text.strip())}</blockquote>")
        columns, rows = question_table(section.result)
        out.append(table_html(columns, rows, [_row_class(row[1]) for row in rows],
                              css_class="results"))
        out.append('<div class="figures">' + "".join(_img(f) for f in section.figures)
                   + "</div>")
        for label, text in section.extras:
            out.append(f'<h3>{esc(label)}</h3><div class="task-section">'
                       f"{markdown_html(text.strip(), folder)}</div>")
        if q.explanation:
            out.append("<h3>What the knob does</h3>"
                       f'<div class="explanation">{esc(q.explanation.strip())}</div>')
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
