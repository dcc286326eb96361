"""The analysis experiments as the task "analysis": discovery, declarative sizes, the run
lifecycle (schema-2 result, done runs kept, report section), thread count restored."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys

import pytest
import torch

from dlab.analysis import registry
from dlab.analysis.runner import run_analysis
from dlab.torch_engine.threads import torch_threads
from dlab.analysis.sizes import at_least, check_sizes, fraction, limit, positive
from dlab.errors import DlabError
from dlab.results import read_result
from dlab.tasks import RunContext, get_task, run_task

GRAD_NORM = {"experiment": "grad-norm", "settings": {"iterations": 300}}


def test_analysis_task_runs_once_and_gives_its_section(tmp_path, data_dir):
    task = get_task("analysis")
    cfg = task.resolve(GRAD_NORM)
    assert cfg.settings.iterations == 300 and task.resolve(cfg.to_dict()) == cfg
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    result = run_task(task, cfg, RunContext(run_dir, data_dir=str(data_dir), progress=False))
    assert result == read_result(run_dir) and result["config_hash"] == cfg.hash()
    assert result["primary"] == {"name": "passed", "direction": "max"}
    assert result["final"]["passed"] == int(result["info"]["verdict"]["passed"]) == 1
    mtime = (run_dir / "result.json").stat().st_mtime_ns
    assert run_task(task, cfg, RunContext(run_dir, progress=False)) == result  # not rerun
    assert (run_dir / "result.json").stat().st_mtime_ns == mtime
    section = task.report_section(run_dir)
    assert "**Verdict: PASSED**" in section
    assert f"]({run_dir.as_posix()}/grad_norm.png)" in section
    (run_dir / "result.json").unlink()
    other = task.resolve({"experiment": "grad-norm", "settings": {"iterations": 200}})
    with pytest.raises(DlabError, match="holds another analysis config"):
        run_task(task, other, RunContext(run_dir, progress=False))


def test_run_restores_the_thread_count(tmp_path, data_dir):
    cfg = get_task("analysis").resolve({"experiment": "grad-norm",
                                        "settings": {"iterations": 20}})
    with torch_threads(2):
        run_analysis(cfg, tmp_path, data_dir, log=lambda m: None, threads=1)
        assert torch.get_num_threads() == 2


def test_keys_follow_the_sizes_not_the_spelling():
    task = get_task("analysis")
    full = task.resolve({"experiment": "grad-norm", "full": True})
    spelled = task.resolve({"experiment": "grad-norm", "settings": {"iterations": 10000}})
    assert full == spelled and full.hash() == spelled.hash()
    assert task.resolve({"experiment": "grad-norm"}).hash() != full.hash()
    seeded = task.resolve({"experiment": "grad-norm", "settings": {"seed": 3}})
    assert seeded.hash() != task.resolve({"experiment": "grad-norm"}).hash()


@pytest.mark.parametrize("data, needle", [
    ({}, "experiment = None"),
    ({"experiment": "flatness"}, "experiment = 'flatness': expected one of"),
    ({"experiment": "grad-norm", "colour": 1}, "unknown config key 'colour'"),
    ({"experiment": "grad-norm", "settings": {"lr": 0}}, "grad-norm.lr = 0.0; expected a positive"),
    ({"experiment": "trajectory", "settings": {"min_acc": 1.5}}, "in [0, 1]"),
    ({"experiment": "trajectory", "settings": {"train_limit": -1}}, ">= 0 (0 = all)"),
    ({"experiment": "trajectory", "settings": {"activation": "x"}}, "unknown config key"),
    ({"experiment": "deep-vs-shallow-functions", "settings": {"activation": "swish"}},
     "activation = 'swish'; expected one of"),
])
def test_bad_analysis_configs_are_one_line_errors(data, needle):
    with pytest.raises(DlabError, match=re.escape(needle)) as info:
        get_task("analysis").resolve(data)
    assert "\n" not in str(info.value)


def test_legitimate_zeros_pass():
    """Bounds are declared per field, not guessed from names: 0 is fine where a field says so."""

    @dataclasses.dataclass(frozen=True)
    class Sizes:
        momentum: float = at_least(0.9, 0)
        dropout: float = fraction(0.5)
        train_limit: int = limit(100)
        epochs: int = positive(3)
        label: str = "x"

    check_sizes(Sizes(momentum=0.0, dropout=0.0, train_limit=0), "toy")
    with pytest.raises(DlabError, match=r"toy.momentum = -0.1; expected >= 0"):
        check_sizes(Sizes(momentum=-0.1), "toy")
    with pytest.raises(DlabError, match="toy.epochs = 0; expected a positive value"):
        check_sizes(Sizes(epochs=0), "toy")
    # the experiments' own shares may be 0 now (the old name rule refused them)
    spec = registry.get_experiment("random-labels")
    assert registry.resolve_config(spec, {"min_train_acc": 0.0}).min_train_acc == 0.0


def test_a_new_experiment_module_is_discovered(tmp_path, monkeypatch):
    from dlab.analysis import experiments as package

    (tmp_path / "toy_experiment.py").write_text(
        "from dataclasses import dataclass\n"
        "from dlab.analysis.registry import ExperimentSpec\n"
        "from dlab.analysis.sizes import positive\n"
        "@dataclass(frozen=True)\n"
        "class ToyConfig:\n"
        "    steps: int = positive(3)\n"
        "SPEC = ExperimentSpec(name='toy', title='Toy', config_cls=ToyConfig,\n"
        "                      full={'steps': 30}, compute=None, order=0)\n")
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    registry._discovered.cache_clear()
    try:
        names = list(registry.experiments())
        assert names[0] == "toy" and len(names) == 10
        cfg = get_task("analysis").resolve({"experiment": "toy", "full": True})
        assert cfg.settings.steps == 30
        with pytest.raises(DlabError, match="toy.steps = 0"):
            get_task("analysis").resolve({"experiment": "toy", "settings": {"steps": 0}})
    finally:
        monkeypatch.undo()
        registry._discovered.cache_clear()
        sys.modules.pop("dlab.analysis.experiments.toy_experiment", None)
    assert "toy" not in registry.experiments()


def test_activation_choices_match_the_torch_models():
    from dlab.analysis.nets import ACTIVATIONS
    from dlab.config import ACTIVATIONS as NAMES

    assert set(NAMES) == set(ACTIVATIONS)


def test_old_analysis_results_read_like_new_ones(tmp_path):
    old = {"status": "finished", "experiment": "grad-norm", "time_s": 1.5,
           "verdict": {"passed": True, "claim": "c", "measured": {"a": 1.0}},
           "figures": ["grad_norm.png"]}
    (tmp_path / "result.json").write_text(json.dumps(old))
    r = read_result(tmp_path)
    assert r["task"] == "analysis" and r["final"]["passed"] == 1
    assert r["info"]["verdict"]["measured"] == {"a": 1.0}
    assert r["info"]["figures"] == ["grad_norm.png"]


def test_task_module_does_not_import_torch():
    code = ("import sys; from dlab.tasks import get_task; t = get_task('analysis'); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False"]
