"""`dlab analyze`: run directories, the combined report, and one-line errors on bad input."""

from __future__ import annotations

import json

import pytest

from dlab.analysis.registry import experiments, get_experiment, resolve_config
from dlab.analysis.runner import analyze_all
from dlab.cli import main
from dlab.errors import DlabError
from dlab.results import read_result

TINY_MINIMAL_RATIO = {"nets": 4, "points": 20, "loss_steps": 50, "grad_steps": 20}


def test_registry_has_every_experiment_with_full_sizes():
    specs = experiments()
    assert len(specs) == 9
    for spec in specs.values():
        reduced, full = resolve_config(spec), resolve_config(spec, full=True)
        assert reduced != full, spec.name  # --full really changes the sizes


def test_analyze_one_writes_a_complete_run_dir(tmp_path, data_dir, capsys):
    rc = main(["analyze", "grad-norm", "--set", "iterations=300", "--runs-dir", str(tmp_path),
               "--data-dir", str(data_dir), "--quiet"])
    assert rc == 0
    (run,) = (tmp_path / "analyze").iterdir()
    result = read_result(run)
    assert result["task"] == "analysis" and result["status"] == "finished"
    verdict = result["info"]["verdict"]
    m = verdict["measured"]
    # 300 Adam steps fit f1 well enough: the phenomenon shows, and the numbers say why
    assert result["final"]["passed"] == 1 and verdict["passed"] is True
    assert m["loss_drop_factor"] >= 10 and m["grad_norm_last_tenth"] < m["grad_norm_first_tenth"]
    assert result["config_hash"] == json.loads((run / "manifest.json").read_text())["config_hash"]
    config = json.loads((run / "config.json").read_text())
    assert config["experiment"] == "grad-norm" and config["settings"]["iterations"] == 300
    assert result["info"]["figures"] == ["grad_norm.png"]
    for fig in result["info"]["figures"]:
        assert (run / fig).stat().st_size > 1000
        data = json.loads((run / fig.replace(".png", ".json")).read_text())
        assert len(data["panels"][0]["series"][0]["y"]) == 300
    assert len(result["info"]["numbers"]["grad_norm"]) == 300
    section = (run / "section.md").read_text()
    assert "grad-norm" in section and "**Verdict: PASSED**" in section
    assert f"loss_drop_factor = {m['loss_drop_factor']:.4g}" in section
    assert capsys.readouterr().out.startswith("grad-norm: passed — the loss falls")


def test_analyze_all_writes_report_linking_each_experiment(tmp_path, data_dir):
    root, results = analyze_all(tmp_path, {"minimal-ratio": TINY_MINIMAL_RATIO,
                                           "grad-norm": {"iterations": 300}},
                                data_dir=data_dir, names=["grad-norm", "minimal-ratio"],
                                log=lambda m: None)
    report = (root / "report.md").read_text()
    assert set(results) == {"grad-norm", "minimal-ratio"}
    for link in ("grad-norm/grad_norm.png", "minimal-ratio/minimal_ratio.png",
                 "minimal-ratio/minimal_ratio.json"):
        assert f"]({link})" in report and (root / link).exists()
    # the table states each experiment's own verdict
    assert "| [grad-norm](#grad-norm) | passed |" in report
    shown = "passed" if results["minimal-ratio"]["final"]["passed"] else "NOT shown"
    assert f"| [minimal-ratio](#minimal-ratio) | {shown} |" in report
    folder = read_result(root)
    assert folder["kind"] == "analysis-all" and folder["status"] == "finished"
    assert folder["final"]["passed"] == sum(r["final"]["passed"] for r in results.values())
    assert folder["info"]["verdicts"] == {n: bool(r["final"]["passed"])
                                          for n, r in results.items()}
    assert json.loads((root / "config.json").read_text())["experiments"]["grad-norm"][
        "settings"]["iterations"] == 300


@pytest.mark.parametrize("argv, needle", [
    (["analyze", "no-such-thing"], "unknown experiment 'no-such-thing'"),
    (["analyze", "minimal-ratio", "--set", "nets=0"], "minimal-ratio.nets = 0"),
    (["analyze", "sensitivity", "--set", "batch_sizes=[16]"], "at least two batch sizes"),
    (["analyze", "trajectory", "--set", "epochs=-3"], "trajectory.epochs = -3"),
    (["analyze", "trajectory", "--set", "colour=red"], "unknown config key 'trajectory.colour'"),
    (["analyze", "trajectory", "--set", "epochs=many"], "expected an integer"),
    (["analyze", "random-labels", "--set", "dataset=imagenet"], "imagenet"),
    (["analyze", "all", "--set", "epochs=3"], "experiment.key=value"),
    (["analyze", "all", "--set", "trajectory.runs=0"], "trajectory.runs = 0"),
])
def test_bad_input_is_one_line_error_before_work(tmp_path, capsys, argv, needle):
    rc = main(argv + ["--runs-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("dlab: error:") and "\n" not in err and needle in err, err
    assert not (tmp_path / "analyze").exists()  # nothing was created or trained


def test_get_experiment_unknown_raises():
    with pytest.raises(DlabError, match="expected one of"):
        get_experiment("flatness")
