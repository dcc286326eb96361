"""A classification run with the course's files (`train.deliverables`) gets a section in the
study report: the log's last line, links to the files, its first-layer filters embedded. A run
shared by several questions shows its section once; a question with no original submission has
no reference columns; runs of one epoch are compared as bars."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from dlab.reports import build_report
from dlab.reports.figures import _single_epoch
from dlab.reports.series import CurveSpec, FigureSpec
from dlab.studies import load_study, plan_study

STUDY = """
name = "tiny-hw2"
[base]
data.dataset = "cifar10"
data.validation = "holdout"
data.val_size = 1000
model.name = "convnet"
train.epochs = 1
train.eval_every = 5
train.deliverables = "convnet"

[[questions]]
key = "p2-convnet"
title = "The convnet"
[[questions.variants]]
label = "convnet"

[[questions]]
key = "p2-filter-size"
title = "Filter size"
[[questions.variants]]
label = "3x3"
set = { "model.kernel" = 3 }
[[questions.variants]]
label = "7x7"
"""

ACC = {("p2-convnet", "convnet"): 0.61, ("p2-filter-size", "3x3"): 0.62}


def _write_runs(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    path = tmp_path / "tiny-hw2.toml"
    path.write_text(STUDY)
    plan = plan_study(load_study(path), tmp_path / "runs")
    dirs = {}
    for seed, ((key, label), acc) in enumerate(ACC.items()):
        (item,) = plan.lookup(key, label)
        run = item.run_dir
        run.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps(item.config.to_dict()))
        row = {"epoch": 1, "loss": 1.2, "acc": acc - 0.02, "val_loss": 1.1, "val_acc": acc,
               "lr": 1e-3, "time_s": 10.0, "params": 86666}
        (run / "metrics.jsonl").write_text(json.dumps(row) + "\n")
        (run / "result.json").write_text(json.dumps(
            {"status": "finished", "epochs_completed": 1, "final_val_acc": acc,
             "best_val_acc": acc, "best_epoch": 1, "final_val_loss": 1.1,
             "seconds_per_epoch": 10.0, "params": 86666, "time_s": 10.0, "config_hash": "x",
             "dataset": "cifar10"}))
        (run / "convnet.log").write_text(f"# convnet\niteration 5: val acc {acc}\n"
                                         f"test accuracy: {acc + 0.01:.4f} (10000 test images)\n")
        (run / "predictions.csv").write_text("image_id,label\n0,3\n")
        pixels = np.random.default_rng(seed).integers(0, 256, (40, 80, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(run / "convnet_gridfilt.png")
        dirs[label] = run
    return path, dirs


def test_deliverables_section_once_per_run_without_reference_columns(tmp_path):
    study, dirs = _write_runs(tmp_path)
    report = build_report(study, tmp_path / "runs", tmp_path / "out")
    md = report.markdown.read_text()
    # the convnet run serves p2-convnet/convnet and p2-filter-size/7x7: one section, one pointer
    assert md.count("The log's last line: `test accuracy: 0.6200 (10000 test images)`") == 1
    assert "The log's last line: `test accuracy: 0.6300 (10000 test images)`" in md
    assert md.count("The same run as p2-convnet/convnet: its section is above.") == 1
    rel = Path(os.path.relpath(dirs["convnet"], tmp_path / "out"))  # ../runs/tiny-hw2/<hash>
    assert f"[convnet.log]({rel / 'convnet.log'})" in md
    assert f"[predictions.csv]({rel / 'predictions.csv'})" in md
    assert f"![convnet: first-layer filters]({rel / 'convnet_gridfilt.png'})" in md
    assert "convnet_lossvstrain.png" not in md  # only the files that exist are linked
    # no variant has an original submission: neither its columns nor the note about it
    assert "original submission" not in md and "Δ vs original" not in md
    assert "| 3x3 | finished | 62.00 | 62.00 @1 | 1.1000 | 10.0 | 86,666 |" in md

    html = report.html.read_text()
    for label in ("convnet", "3x3"):
        grid = base64.b64encode((dirs[label] / "convnet_gridfilt.png").read_bytes()).decode()
        assert html.count(grid) == 1


def test_runs_of_one_epoch_are_compared_as_bars(tmp_path):
    def spec(*curves):
        return FigureSpec("q", "val_acc", "t", "epoch", "y", tuple(curves), (), ())

    one = CurveSpec("a", (1,), (61.0,), "finished")
    assert _single_epoch(spec(one, CurveSpec("b", (1,), (62.0,), "finished"))) == 1
    assert _single_epoch(spec(one, CurveSpec("b", (1, 2), (60.0, 62.0), "finished"))) is None
    assert _single_epoch(spec(one, CurveSpec("b", (2,), (62.0,), "finished"))) is None
    assert _single_epoch(spec()) is None

    study, _ = _write_runs(tmp_path)
    build_report(study, tmp_path / "runs", tmp_path / "out")
    data = json.loads((tmp_path / "out/figures/p2-filter-size_val_acc.json").read_text())
    assert [(c["label"], c["x"], c["y"]) for c in data["curves"]] == [
        ("3x3", [1], [62.0]), ("7x7", [1], [61.0])]
    assert Image.open(tmp_path / "out/figures/p2-filter-size_val_acc.png").size[0] > 300
