"""Task "ladder": a run into tmp_path checks parity, a finished run is not redone, bad config
and a missing keras are one-line errors, and the sjsu-a4 study plans its ladder questions."""

import json
import sys

import pytest

torch = pytest.importorskip("torch")

from dlab.errors import DlabError  # noqa: E402
from dlab.results import read_result  # noqa: E402
from dlab.tasks import RunContext, get_task, run_task  # noqa: E402

SMALL = {"steps": 40, "train_limit": 1280, "test_limit": 500,
         "ladder": {"model": {"hidden": [16, 8], "dtype": "float64"}, "batch_size": 32}}


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _run(tmp_path, data_dir, extra=None):
    task = get_task("ladder")
    cfg = task.resolve({**SMALL, **(extra or {})})
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    return task, cfg, run_dir, run_task(task, cfg, RunContext(run_dir, str(data_dir),
                                                              progress=False))


def test_ladder_run_writes_parity_and_is_not_redone(tmp_path, data_dir):
    task, cfg, run_dir, result = _run(tmp_path, data_dir)
    assert result == read_result(run_dir)
    f = result["final"]
    assert result["status"] == "finished" and result["primary"]["name"] == "max_weight_diff"
    assert f["parity_ok"] == 1
    assert 0 < f["max_weight_diff"] <= cfg.tolerance  # round-off, not an exact copy
    for rung in ("torch_manual", "torch_autograd", "torch_nn"):
        assert f[f"loss_diff_{rung}"] <= 1e-9
        assert f[f"test_acc_{rung}"] == pytest.approx(f["test_acc_numpy"], abs=1e-3)
    assert f["test_acc_numpy"] > 0.3  # it trained (chance: 0.1)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 41))
    assert rows[-1]["loss_numpy"] < 0.7 * rows[0]["loss_numpy"]
    curves = json.loads((run_dir / "loss_curves.json").read_text())
    assert set(curves) == set(cfg.rungs) and curves["numpy"] == [r["loss_numpy"] for r in rows]
    assert (run_dir / "loss_curves.png").stat().st_size > 0
    assert (run_dir / "parity.png").stat().st_size > 0
    section = task.report_section(run_dir)
    assert "**Parity: OK**" in section and f"]({run_dir.as_posix()}/loss_curves.png)" in section
    before = (run_dir / "result.json").stat().st_mtime_ns
    (run_dir / "metrics.jsonl").write_text("")  # a rerun would rewrite it
    again = run_task(task, cfg, RunContext(run_dir, str(data_dir), progress=False))
    assert again == result and (run_dir / "result.json").stat().st_mtime_ns == before
    assert (run_dir / "metrics.jsonl").read_text() == ""


def test_a_wrong_rung_fails_the_parity_check(tmp_path, data_dir, monkeypatch):
    from dlab.ladder import torch_manual

    real = torch_manual.apply_update

    def off_by_a_bit(cfg, w, dw, state, lr):  # a 1% error in the update step
        real(cfg, w, dw * 1.01, state, lr)

    monkeypatch.setattr(torch_manual, "apply_update", off_by_a_bit)
    _, _, _, result = _run(tmp_path, data_dir, {"rungs": ["numpy", "torch-manual"]})
    assert result["final"]["parity_ok"] == 0
    assert result["final"]["max_weight_diff"] > 1e-4


def test_dropout_makes_parity_not_applicable(tmp_path, data_dir):
    _, _, run_dir, result = _run(tmp_path, data_dir, {
        "rungs": ["numpy", "torch-nn"],
        "ladder": {**SMALL["ladder"], "model": {"hidden": [16, 8], "dropout": [0.3, 0.3]}}})
    assert result["final"]["parity_ok"] is None
    assert result["info"]["parity"].startswith("not applicable")
    assert "not applicable" in (run_dir / "section.md").read_text()


def test_keras_rung_without_keras_is_a_one_line_error(tmp_path, data_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)  # import keras -> ImportError
    with pytest.raises(DlabError, match=r"keras.*'dlab\[keras\]'") as exc:
        _run(tmp_path, data_dir, {"rungs": ["numpy", "keras"]})
    assert "\n" not in str(exc.value)
    assert read_result(tmp_path / "run") is None


@pytest.mark.parametrize("data, message", [
    ({"rungs": ["numpy", "jax"]}, "unknown rung 'jax'"),
    ({"rungs": ["torch-nn", "keras"]}, "expected 'numpy'"),
    ({"rungs": ["numpy"]}, "at least one other rung"),
    ({"rungs": ["numpy", "keras", "keras"]}, "listed twice"),
    ({"steps": 0}, "steps 0"),
    ({"tolerance": 0}, "tolerance 0"),
    ({"train_limit": 10}, "train_limit 10"),
    ({"ladder": {"update_rule": "lion"}}, "unknown update rule 'lion'"),
    ({"ladder": {"model": {"hidden": "wide"}}}, "ladder.model.hidden = 'wide'"),
    ({"stepz": 3}, "unknown config key 'stepz'"),
])
def test_bad_ladder_task_config_is_one_line_error(data, message):
    with pytest.raises(DlabError, match=message) as exc:
        get_task("ladder").resolve(data)
    assert "\n" not in str(exc.value)


def test_config_key_is_stable_and_sensitive():
    task = get_task("ladder")
    a = task.resolve({"steps": 100})
    assert a.hash() == task.resolve({"steps": 100}).hash()
    assert a.hash() != task.resolve({"steps": 101}).hash()
    assert task.resolve({}).hash() == task.resolve(a.to_dict() | {"steps": 300}).hash()


def test_sjsu_a4_plans_the_ladder_questions(tmp_path):
    from dlab.studies import load_study
    from dlab.studies.plan import plan_study

    study = load_study("sjsu-a4")
    plan = plan_study(study, tmp_path / "runs")
    ladder = [r for r in plan.runs if r.task == "ladder"]
    assert {q for r in ladder for q, _ in r.uses} == {"j", "k"}
    assert all(r.run_dir.name == r.config.hash() for r in ladder)
    four = {"numpy", "torch-manual", "torch-autograd", "torch-nn"}
    j = [plan.lookup("j", v.label)[0].config for v in study.question("j").variants]
    assert all(set(c.rungs) == four and c.deterministic for c in j)
    k = [plan.lookup("k", v.label)[0].config for v in study.question("k").variants]
    assert all("keras" in c.rungs for c in k)
    # a ladder variant starts from its own `set`, not from the numpy-mlp base
    assert all(c.ladder.model.hidden == (128, 64) for c in j)
    assert len({r.key for r in ladder}) == len(ladder) == 6
    assert all(r.task == "numpy-mlp" for r in plan.runs if r.task != "ladder")
