"""A report over real (tiny) engine runs shows exactly the numbers the runs recorded."""

from __future__ import annotations

import json

from dlab.reports import build_report
from dlab.runs import read_jsonl
from dlab.studies import load_study, plan_study
from dlab.studies.execute import execute_item

STUDY = """
name = "tiny-real"
[base]
data.train_limit = 512
data.val_limit = 500
train.epochs = 2
train.batch_size = 64

[[questions]]
key = "q5"
title = "Dropout"
explanation = "Dropout zeroes each unit with probability p while training."
[[questions.variants]]
label = "p0.5"
[[questions.variants]]
label = "p0.9"
set = { "model.dropout" = 0.9 }

[[questions]]
key = "q14"
title = "Evaluate on MNIST"
[[questions.variants]]
label = "on-mnist"
kind = "eval"
source = "q5/p0.5"
dataset = "mnist"
"""


def test_report_numbers_come_from_the_runs(tmp_path, data_dir):
    path = tmp_path / "tiny-real.toml"
    path.write_text(STUDY)
    study = load_study(path)
    plan = plan_study(study, tmp_path / "runs")
    for item in plan.runs:  # every item but q5/p0.9, which stays "not run"
        if ("q5", "p0.9") not in item.uses:
            execute_item(item, data_dir=data_dir, device="cpu")

    report = build_report(study, tmp_path / "runs", tmp_path / "out")
    assert report.counts == {"finished": 2, "not run": 1}
    md = report.markdown.read_text()
    (item,) = plan.lookup("q5", "p0.5")
    result = json.loads((item.run_dir / "result.json").read_text())
    row = next(line for line in md.splitlines() if line.startswith("| p0.5 |"))
    assert f"| {result['final']['val_acc'] * 100:.2f} |" in row
    assert f"| {result['final']['val_loss']:.4f} |" in row
    assert f"| {result['params']:,} |" in row
    assert f"| {result['seconds_per_epoch']:.1f} |" in row
    assert "| p0.9 | not run |" in md
    (step,) = plan.lookup("q14", "on-mnist")
    evaluated = json.loads((step.run_dir / "result.json").read_text())["final"]["val_acc"]
    assert f"| on-mnist | finished (eval on mnist) | {evaluated * 100:.2f} |" in md

    figure = json.loads((tmp_path / "out/figures/q5_val_acc.json").read_text())
    rows = read_jsonl(item.run_dir / "metrics.jsonl")
    (curve,) = figure["curves"]
    assert curve["label"] == "p0.5" and figure["missing"] == ["p0.9 (not run)"]
    assert curve["x"] == [1, 2]
    assert curve["y"] == [r["val_acc"] * 100 for r in rows]
