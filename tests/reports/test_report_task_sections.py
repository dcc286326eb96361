"""A task's own report section (markdown) is rendered as HTML in report.html: its tables as
<table>, its text as <p>, its images embedded as data: URIs; report.md keeps the markdown."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image

from dlab.reports import build_report
from dlab.reports.mdhtml import markdown_html
from dlab.results import make_result, write_result
from dlab.studies import load_study, plan_study

STUDY = """
name = "tiny-gan"
[base]
task = "gan"
data.dataset = "mnist"
train.epochs = 2

[[questions]]
key = "compare"
title = "DCGAN vs WGAN"
[[questions.variants]]
label = "dcgan"
set = { "model.kind" = "dcgan" }
[[questions.variants]]
label = "wgan"
set = { "model.kind" = "wgan" }
"""

FINAL = {"dcgan": 49.97, "wgan": 274.0}


def _grid(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (62, 242), dtype=np.uint8)
    Image.fromarray(pixels, mode="L").save(path)


def _write_gan_runs(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    path = tmp_path / "tiny-gan.toml"
    path.write_text(STUDY)
    plan = plan_study(load_study(path), tmp_path / "runs")
    dirs = {}
    for seed, (label, fd) in enumerate(FINAL.items()):
        (item,) = plan.lookup("compare", label)
        run = item.run_dir
        run.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps(item.config.to_dict()))
        final = {"eval_n": 10000, "fd_dlab": fd, "fd_dlab_floor": 0.7005, "kid_dlab": 64.2,
                 "kid_dlab_std": 7.34, "kid_dlab_floor": 0.0983, "classes_covered": 10,
                 "kl_uniform": 0.147, "d_loss": 0.8, "g_loss": 1.7}
        rows = [{"epoch": e, "fd_dlab": fd * (3 - e), "d_loss": 0.8, "g_loss": 1.7,
                 "time_s": 6.5, "params": 383616} for e in (1, 2)]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        if label == "dcgan":  # the wgan run has no sample grid: its section has no image
            _grid(run / "samples" / "epoch-001.png", 100 + seed)
            _grid(run / "samples" / "epoch-002.png", seed)
        write_result(run, make_result(
            task="gan", status="finished", primary="fd_dlab", direction="min", final=final,
            best_epoch=2, params=383616, time_s=13.0, epochs_completed=2,
            seconds_per_epoch=6.5, info={"extractor_key": "57e97817970e",
                                         "extractor_test_acc": 0.9837}))
        dirs[label] = run
    return path, dirs


def _section_html(html: str, label: str) -> str:
    match = re.search(rf"<h3>{label}</h3>(.*?)(?=<h3>|</section>)", html, re.S)
    assert match, f"no section for {label}"
    return match.group(1)


def test_gan_section_is_rendered_as_html_with_its_grid_embedded(tmp_path):
    study, dirs = _write_gan_runs(tmp_path)
    out = tmp_path / "out"
    report = build_report(study, tmp_path / "runs", out)
    html = report.html.read_text()

    dcgan = _section_html(html, "dcgan")
    match = re.search(r"<table>.*?</table>", dcgan, re.S)
    assert match, "the section's markdown table is not an HTML table"
    table = match.group(0)
    assert "<th>FD-dlab</th>" in table and "<th>FD / floor</th>" in table
    assert "<td>49.97</td>" in table and "<td>0.70</td>" in table and "<td>71.3×</td>" in table
    assert "<td>64.20 ± 7.34</td>" in table
    assert re.search(r"<p>FD-dlab / KID-dlab: samples vs the test set.*?</p>", dcgan, re.S)
    grid = base64.b64encode((dirs["dcgan"] / "samples/epoch-002.png").read_bytes()).decode()
    assert f'<img src="data:image/png;base64,{grid}" alt="final samples"' in dcgan
    assert "<td>274.00</td>" in _section_html(html, "wgan")
    # no raw markdown left in the page, and still nothing loaded from elsewhere
    assert "![final samples]" not in html and "|---|" not in html and "<pre" not in html
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", html)
    assert html.count('<img src="data:image/png;base64,') == len(report.figures) + 1

    md = report.markdown.read_text()  # report.md still links the grid relative to itself
    link = re.search(r"!\[final samples\]\(([^)]+)\)", md).group(1)
    assert not os.path.isabs(link)
    assert (out / link).samefile(dirs["dcgan"] / "samples/epoch-002.png")
    assert "| 10000 | 49.97 | 0.70 | 71.3× |" in md


def test_section_markdown_subset_and_missing_images(tmp_path):
    _grid(tmp_path / "figs" / "a.png", 0)
    text = ("#### Title with `code`\n\nSome **bold** text, lr * grad and a "
            "[data link](figs/a.json).\n\n"
            "| rung | max \\|Δ w\\| |\n|---|---:|\n| numpy | 1e-3 |\n\n"
            "![present](figs/a.png)  ![absent](figs/none.png) ![remote](https://x.org/a.png)\n\n"
            "- one\n- two <b>\n")
    out = markdown_html(text, tmp_path)
    assert "<h4>Title with <code>code</code></h4>" in out
    assert "<p>Some <strong>bold</strong> text, lr * grad and a " in out
    assert '<a href="figs/a.json">data link</a>' in out
    assert '<th style="text-align: right">max |Δ w|</th>' in out
    assert '<td style="text-align: right">1e-3</td>' in out
    assert out.count("<img ") == 1 and 'alt="present"' in out
    assert 'src="data:image/png;base64,' in out
    assert "[image: absent]" in out and "[image: remote]" in out and "x.org" not in out
    assert "<ul><li>one</li><li>two &lt;b&gt;</li></ul>" in out
    assert "[image: present]" in markdown_html(text, None)  # no folder: nothing to resolve
