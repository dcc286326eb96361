"""A runs folder written by dlab 0.1 (main at 158b0c7, before the run-lifecycle redesign) stays
valid: `tests/fixtures/runs-0.1.tar.gz` was produced by running `tests/fixtures/legacy-0.1.toml`
with that release (figures and TensorBoard events removed to keep it small)."""

import shutil
import tarfile
from pathlib import Path

import pytest

from dlab.cli import main
from dlab.reports import build_report
from dlab.results import read_result
from dlab.studies import load_study, plan_study
from dlab.studies.local import LocalConfig, run_plan

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def legacy(tmp_path):
    with tarfile.open(FIXTURES / "runs-0.1.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    study = tmp_path / "legacy.toml"
    shutil.copy(FIXTURES / "legacy-0.1.toml", study)
    return load_study(study), tmp_path / "runs"


def test_every_planned_item_finds_its_0_1_run_directory(legacy):
    study, root = legacy
    plan = plan_study(study, root)
    assert len(plan.runs) == 6
    for item in plan.runs:
        assert item.run_dir.is_dir(), item
        assert item.key != item.run_dir.name or item.kind == "eval"  # found by the 0.1 key
        assert item.done() and item.status() == "finished"
        result = read_result(item.run_dir)
        assert result["schema"] == 2 and result["final"]["val_acc"] is not None


def test_study_run_trains_nothing_that_was_finished(legacy, data_dir):
    study, root = legacy
    before = {p: p.stat().st_mtime_ns for p in root.rglob("result.json")}
    out = run_plan(plan_study(study, root), LocalConfig(workers=1, data_dir=str(data_dir)),
                   echo=lambda line: None)
    assert out.ran == [] and not out.failed and len(out.skipped) == 6
    assert {p: p.stat().st_mtime_ns for p in root.rglob("result.json")} == before


def test_report_shows_every_finished_variant_with_its_0_1_numbers(legacy, tmp_path):
    study, root = legacy
    built = build_report(study, root, tmp_path / "report")
    assert built.counts == {"finished": 6}
    text = built.markdown.read_text()
    plan = plan_study(study, root)
    for item in plan.runs:
        acc = read_result(item.run_dir)["final"]["val_acc"]
        assert f"{100 * acc:.2f}" in text


def test_dlab_runs_lists_the_0_1_runs(legacy, capsys):
    _, root = legacy
    assert main(["runs", "--runs-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.count("finished") == 6 and "classification" in out
