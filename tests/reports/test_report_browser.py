"""report.html renders in a real browser: every figure decodes, the console stays clean.

Needs Debian's `chromium` (skipped with that reason when absent). A deliberately broken page
first proves the check catches broken images and console errors.
"""

from __future__ import annotations

import pytest

from dlab.reports import build_report

from .chromium_cdp import Chromium, find_chromium
from .runs_fixture import write_runs, write_study

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed "
                                "(apt-get install chromium)")

BROKEN_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==">
<img src="data:image/png;base64,bm90IGEgcG5n">
<script>console.error("deliberate error")</script></body></html>"""


@pytest.fixture
def browser(tmp_path):
    chromium = Chromium(CHROMIUM, tmp_path / "chromium-profile")
    yield chromium
    chromium.close()


def test_report_html_renders_in_chromium(tmp_path, browser):
    broken = tmp_path / "broken.html"
    broken.write_text(BROKEN_PAGE)
    control = browser.page_check(broken.as_uri())
    assert [(i["decoded"], i["width"] > 0) for i in control["images"]] == [(True, True),
                                                                          (False, False)]
    assert any("deliberate error" in e for e in control["errors"])

    study = write_study(tmp_path)
    write_runs(study, tmp_path / "runs")
    report = build_report(study, tmp_path / "runs", tmp_path / "out")
    page = browser.page_check(report.html.as_uri())
    assert len(page["images"]) == len(report.figures) == 8
    for img in page["images"]:
        assert img["complete"] and img["decoded"], img
        assert img["width"] > 300 and img["height"] > 200, img
    assert page["errors"] == []
