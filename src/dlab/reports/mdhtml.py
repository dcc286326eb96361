"""HTML for the report: tables from display rows, and the Markdown subset task sections use.

`table_html` is the one table renderer (question tables and tables inside task sections).
`markdown_html(text, folder)` turns a task's report section into HTML: ATX headings, pipe
tables (with `:---:` alignment and `\\|` escapes), `-`/`*`/`1.` lists, fenced code blocks and
paragraphs; inline `code`, **bold**, *italic*, [links](target) and ![images](path). Images are
read from disk (`path` relative to `folder`, the report's folder, or absolute) and embedded as
base64 `data:` URIs so the page stays self-contained; an image that cannot be embedded (missing
file, remote URL, unknown type) shows its alt text instead. Everything else is HTML-escaped.
Must not import torch.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
         ".webp": "image/webp", ".svg": "image/svg+xml"}
_ESCAPABLE = "\\`*_{}[]()#+-.!|<>"
_TARGET = r"(?:<[^>\n]*>|[^)\s]+)"  # <path with spaces> or path
_TITLE = r"(?:\s+\"[^\"]*\")?"  # an optional "title", ignored
_INLINE = re.compile(
    r"(?P<code>`+)(?P<code_text>.+?)(?P=code)"
    rf"|!\[(?P<img_alt>[^\]]*)\]\(\s*(?P<img_target>{_TARGET}){_TITLE}\s*\)"
    rf"|\[(?P<link_text>[^\]]+)\]\(\s*(?P<link_target>{_TARGET}){_TITLE}\s*\)"
    r"|\*\*(?P<bold>\S(?:.*?\S)?)\*\*"
    r"|(?<![\w*])\*(?P<em>[^\s*](?:[^*]*?[^\s*])?)\*(?![\w*])"
    r"|\\(?P<escaped>[" + re.escape(_ESCAPABLE) + r"])")
_SAFE_HREF = re.compile(r"^(#|https?:|mailto:|[^:]*$)", re.I)
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
_LIST_ITEM = re.compile(r"^\s{0,3}([-*+]|\d{1,9}[.)])\s+(.*)$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_FENCE = re.compile(r"^\s{0,3}(```+|~~~+)")


def table_html(columns: Sequence[str], rows: Sequence[Sequence[str]],
               row_classes: Sequence[str] | None = None,
               align: Sequence[str | None] | None = None, inline=html.escape,
               css_class: str = "") -> str:
    """A <table> of display strings; `inline` renders each cell (plain escaping by default),
    `align` gives a column's text-align ("left", "center", "right") or None for the CSS's."""
    def style(i: int) -> str:
        a = align[i] if align is not None and i < len(align) else None
        return f' style="text-align: {a}"' if a else ""

    opening = f'<table class="{html.escape(css_class)}">' if css_class else "<table>"
    out = [opening + "<thead><tr>" + "".join(f"<th{style(i)}>{inline(c)}</th>"
                                          for i, c in enumerate(columns)) + "</tr></thead><tbody>"]
    for k, row in enumerate(rows):
        cls = row_classes[k] if row_classes is not None else ""
        out.append((f'<tr class="{html.escape(cls)}">' if cls else "<tr>")
                   + "".join(f"<td{style(i)}>{inline(c)}</td>" for i, c in enumerate(row))
                   + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _image(alt: str, target: str, folder: Path | None) -> str:
    """An <img> with the file embedded, or the alt text when it cannot be embedded."""
    escaped_alt = html.escape(alt)
    missing = f'<span class="missing-image">[image: {escaped_alt or html.escape(target)}]</span>'
    if target.startswith("data:image/"):
        return f'<img src="{html.escape(target)}" alt="{escaped_alt}">'
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) and not re.match(r"^[a-z]:[\\/]", target,
                                                                         re.I):
        return missing  # a URL: a self-contained page loads nothing from elsewhere
    path = Path(unquote(target))
    if not path.is_absolute():
        if folder is None:
            return missing
        path = Path(folder) / path
    mime = _MIME.get(path.suffix.lower())
    try:
        data = path.read_bytes() if mime is not None and path.is_file() else None
    except OSError:
        data = None
    if data is None:
        return missing
    return embedded_img(data, mime, alt)


def embedded_img(data: bytes, mime: str, alt: str) -> str:
    """An <img> holding `data` as a base64 `data:` URI, `alt` as its alt text and title."""
    b64 = base64.b64encode(data).decode("ascii")
    escaped = html.escape(alt)
    return f'<img src="data:{mime};base64,{b64}" alt="{escaped}" title="{escaped}">'


def _target(raw: str) -> str:
    return raw[1:-1].strip() if raw.startswith("<") and raw.endswith(">") else raw


def inline_html(text: str, folder: Path | None = None) -> str:
    """One line (or paragraph) of Markdown inline syntax as HTML."""
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[pos:m.start()]))
        pos = m.end()
        if m.group("code") is not None:
            out.append(f"<code>{html.escape(m.group('code_text').strip())}</code>")
        elif m.group("img_target") is not None:
            out.append(_image(m.group("img_alt"), _target(m.group("img_target")), folder))
        elif m.group("link_target") is not None:
            href, label = _target(m.group("link_target")), inline_html(m.group("link_text"),
                                                                      folder)
            out.append(f'<a href="{html.escape(href)}">{label}</a>' if _SAFE_HREF.match(href)
                       else label)
        elif m.group("bold") is not None:
            out.append(f"<strong>{inline_html(m.group('bold'), folder)}</strong>")
        elif m.group("em") is not None:
            out.append(f"<em>{inline_html(m.group('em'), folder)}</em>")
        else:
            out.append(html.escape(m.group("escaped")))
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _cells(line: str) -> list[str]:
    """A pipe-table row split on unescaped pipes (escaped ones, also inside code, stay `\\|`)."""
    s = line.strip()
    s = s[1:] if s.startswith("|") else s
    s = s[:-1] if s.endswith("|") and not s.endswith("\\|") else s
    return [c.strip() for c in re.split(r"(?<!\\)\|", s)]


def _align(rule: str) -> list[str | None]:
    out: list[str | None] = []
    for c in _cells(rule):
        left, right = c.startswith(":"), c.endswith(":")
        out.append("center" if left and right else "right" if right else
                   "left" if left else None)
    return out


def _is_table_start(lines: list[str], i: int) -> bool:
    return ("|" in lines[i] and i + 1 < len(lines) and "|" in lines[i + 1]
            and bool(_TABLE_RULE.match(lines[i + 1])))


def markdown_html(text: str, folder: Path | None = None) -> str:
    """A task's Markdown section as HTML; images relative to `folder` are embedded."""
    lines = text.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    para: list[str] = []
    inline = lambda s: inline_html(s, folder)  # noqa: E731

    def flush() -> None:
        if para:
            out.append("<p>" + "<br>\n".join(inline(p.strip()) for p in _hard_breaks(para))
                       + "</p>")
            para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            flush()
            i += 1
        elif fence := _FENCE.match(line):
            flush()
            body, i = [], i + 1
            while i < len(lines) and not lines[i].strip().startswith(fence.group(1)):
                body.append(lines[i])
                i += 1
            out.append("<pre><code>" + html.escape("\n".join(body)) + "</code></pre>")
            i += 1
        elif heading := _HEADING.match(line):
            flush()
            level = len(heading.group(1))
            out.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
            i += 1
        elif _is_table_start(lines, i):
            flush()
            columns, align = _cells(line), _align(lines[i + 1])
            rows, i = [], i + 2
            while i < len(lines) and lines[i].strip() and "|" in lines[i]:
                cells = _cells(lines[i])
                rows.append((cells + [""] * len(columns))[:len(columns)])
                i += 1
            out.append(table_html(columns, rows, align=align, inline=inline))
        elif (item := _LIST_ITEM.match(line)) and (not para or not item.group(1)[0].isdigit()):
            flush()
            ordered = item.group(1)[0].isdigit()
            items: list[list[str]] = []
            while i < len(lines):
                item = _LIST_ITEM.match(lines[i])
                if item and item.group(1)[0].isdigit() == ordered:
                    items.append([item.group(2)])
                elif items and lines[i].strip() and lines[i].startswith((" ", "\t")):
                    items[-1].append(lines[i].strip())  # a continuation line of the item
                else:
                    break
                i += 1
            tag = "ol" if ordered else "ul"
            out.append(f"<{tag}>" + "".join(f"<li>{inline(' '.join(it))}</li>" for it in items)
                       + f"</{tag}>")
        else:
            para.append(line)
            i += 1
    flush()
    return "\n".join(out)


def _hard_breaks(lines: list[str]) -> list[str]:
    """Paragraph lines joined by spaces, except after a line ending in two spaces or `\\`."""
    out = [""]
    for line in lines:
        out[-1] = f"{out[-1]} {line.strip()}" if out[-1] else line.strip()
        if line.endswith("  ") or line.endswith("\\"):
            out[-1] = out[-1].rstrip("\\")
            out.append("")
    return [x for x in out if x] or [""]
