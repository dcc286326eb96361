"""Reports are rebuilt from run directories only: tables, figures with data, "not run" variants."""

from __future__ import annotations

import json
import re

from dlab.cli import main
from dlab.reports import build_report
from dlab.reports.collect import collect_study
from dlab.reports.series import comparison_data
from dlab.studies import load_study

from .runs_fixture import write_runs, write_study


def _build(tmp_path):
    study = write_study(tmp_path)
    runs = tmp_path / "runs"
    dirs = write_runs(study, runs)
    return study, runs, dirs


def test_series_are_percent_and_skip_non_finite(tmp_path):
    study, runs, _ = _build(tmp_path)
    result = collect_study(load_study(study), runs)
    q1 = result.questions[0]
    data = comparison_data(q1, "val_acc")
    curves = {c.label: c for c in data.curves}
    assert set(curves) == {"lr-small", "lr-default", "lr-huge"}
    assert curves["lr-default"].x == (1, 2, 3)
    assert abs(curves["lr-default"].y[-1] - 81.23) < 1e-9
    assert curves["lr-huge"].y == (10.0, None)  # the NaN epoch of the diverged run
    assert data.missing == ("lr-mid (not run)",)
    refs = [lv for lv in data.levels if lv.kind == "reference"]
    assert [(lv.owner, lv.y) for lv in refs] == [("lr-small", 70.5)]
    assert comparison_data(result.questions[1], "loss").missing == (
        "on-mnist (eval step: no training curve)",)
    q2 = comparison_data(result.questions[1], "val_acc")
    assert [(lv.label, round(lv.y, 6)) for lv in q2.levels] == [("on-mnist (eval on mnist)", 9.9)]


def test_report_tables_figures_and_data(tmp_path):
    study, runs, dirs = _build(tmp_path)
    before = {p: p.stat().st_mtime_ns for d in dirs.values() for p in d.rglob("*")}
    out = tmp_path / "out"
    report = build_report(study, runs, out)

    md = report.markdown.read_text()
    row = next(line for line in md.splitlines() if line.startswith("| lr-default |"))
    assert "| finished | 81.23 | 81.23 @3 | 0.7333 | 3.5 | 21,840 |" in row
    assert re.search(r"\| lr-small \| finished \| 70\.50 \| .* \| 70\.50 \| \+0\.00 \|", md)
    assert "| lr-mid | not run |" in md
    assert "| lr-huge | diverged |" in md
    assert "| on-mnist | finished (eval on mnist) | 9.90 |" in md
    assert "SGD steps w <- w - lr * grad L(w)" in md and "Change the learning rate" in md
    assert "TEST split" in md  # the study validates on the test set, and the report says so
    assert report.counts == {"finished": 4, "diverged": 1, "not run": 1}

    assert len(report.figures) == 8  # 2 questions x 4 metrics
    for png in report.figures:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        data = json.loads(png.with_suffix(".json").read_text())
        assert data["metric"] in ("loss", "val_loss", "acc", "val_acc")
        assert f"]({png.relative_to(out)})" in md
    q1_loss = json.loads((out / "figures" / "q1_loss.json").read_text())
    assert [c["label"] for c in q1_loss["curves"]] == ["lr-small", "lr-default", "lr-huge"]

    html = report.html.read_text()
    assert html.count('<img src="data:image/png;base64,') == 8
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", html)
    assert "<script" not in html
    after = {p: p.stat().st_mtime_ns for d in dirs.values() for p in d.rglob("*")}
    assert after == before  # reports never touch the runs


def test_report_cli(tmp_path, capsys):
    study, runs, _ = _build(tmp_path)
    assert main(["report", str(study), "--runs-dir", str(runs), "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "report.html").is_file()
    assert "1 not run" in capsys.readouterr().out
    # default output folder: beside the study's runs
    assert main(["report", str(study), "--runs-dir", str(runs)]) == 0
    assert (runs / "tiny" / "report" / "report.md").is_file()


def test_report_unknown_study_is_one_line_error(tmp_path, capsys):
    assert main(["report", "no-such-study", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dlab: error:") and "no-such-study" in err and "\n" not in err


def test_report_with_no_runs_shows_every_variant_not_run(tmp_path):
    study = write_study(tmp_path)
    report = build_report(study, tmp_path / "empty", tmp_path / "out")
    assert report.counts == {"not run": 6}
    md = report.markdown.read_text()
    for label in ("lr-small", "lr-default", "lr-huge", "lr-mid", "default", "on-mnist"):
        assert f"| {label} | not run" in md
    assert json.loads((tmp_path / "out/figures/q1_val_acc.json").read_text())["curves"] == []


def test_a_test_time_augmented_final_number_says_so(tmp_path):
    from pathlib import Path

    from dlab.reports.collect import VariantResult
    from dlab.reports.tables import variant_row

    base = dict(label="ultimate", variant="ultimate", kind="train", status="finished",
                run_dir=Path(tmp_path), metrics=(), final_val_acc=0.9424, best_val_acc=0.9368,
                best_epoch=17, final_val_loss=0.25, seconds_per_epoch=38.7, params=298410,
                dataset="fashion-mnist", reference_pct=92.0)
    assert variant_row(VariantResult(**base, tta="flip-shift"))[2] == "94.24 (flip-shift TTA)"
    assert variant_row(VariantResult(**base))[2] == "94.24"


def test_runs_that_evaluated_the_test_set_get_a_test_column_with_its_seed_mean(tmp_path):
    from pathlib import Path

    from dlab.reports.collect import QuestionResult, VariantResult
    from dlab.reports.tables import question_table
    from dlab.studies.spec import QuestionSpec

    def run(label, variant, val, test):
        final = {"val_acc": val, **({} if test is None else {"test_acc": test})}
        return VariantResult(label=label, variant=variant, kind="train", status="finished",
                             run_dir=Path(tmp_path), metrics=(), final_val_acc=val,
                             best_val_acc=val, best_epoch=3, final_val_loss=1.0,
                             seconds_per_epoch=9.0, params=1000, dataset="cifar10",
                             reference_pct=None,
                             result={"final": final, "best": final})

    question = QuestionSpec(key="q", title="t", text="", explanation="", variants=())
    runs = (run("a/seed=1", "a", 0.61, 0.63), run("a/seed=2", "a", 0.62, 0.65),
            run("b", "b", 0.50, None))
    columns, rows = question_table(QuestionResult(question, runs))
    assert columns[2:4] == ("final val acc (%)", "test acc (%)")
    assert [r[3] for r in rows] == ["63.00", "65.00", "64.00 ± 1.41", "—"]
    # no run evaluated the test set: no such column
    columns, _ = question_table(QuestionResult(question, (run("b", "b", 0.5, None),)))
    assert "test acc (%)" not in columns
