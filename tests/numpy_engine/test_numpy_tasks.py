"""The numpy engine's tasks on the one run lifecycle: schema-2 results, done runs not rerun,
a directory with another config refused, divergence recorded, no torch imported."""

import json
import subprocess
import sys

import pytest

from dlab.errors import DlabError
from dlab.results import read_result
from dlab.runs import read_jsonl
from dlab.tasks import RunContext, get_task, run_task

TINY = {"train_limit": 1000, "test_limit": 300,
        "model": {"hidden": [32], "dropout": [0.0]},
        "solver": {"epochs": 2, "train_eval_size": 300, "batch_size": 100}}


def test_numpy_mlp_task_runs_once_and_keys_by_config(tmp_path, data_dir):
    task = get_task("numpy-mlp")
    cfg = task.resolve(TINY)
    assert cfg.solver.update_rule == "nesterov"  # unset keys keep the task's own defaults
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    result = run_task(task, cfg, RunContext(run_dir, data_dir=str(data_dir), progress=False))
    assert result == read_result(run_dir)
    assert result["task"] == "numpy-mlp" and result["primary"] == {"name": "val_acc",
                                                                    "direction": "max"}
    assert result["config_hash"] == cfg.hash() and result["epochs_completed"] == 2
    assert result["final"]["val_acc"] > 0.6  # chance 0.1
    rows = read_jsonl(run_dir / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert result["final"]["val_acc"] == rows[-1]["val_acc"]
    assert result["best"]["val_acc"] == max(r["val_acc"] for r in rows)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config_hash"] == cfg.hash() and manifest["engine"] == "numpy"
    # a finished run is returned as it is, not trained again
    mtime = (run_dir / "result.json").stat().st_mtime_ns
    assert run_task(task, cfg, RunContext(run_dir, progress=False)) == result
    assert (run_dir / "result.json").stat().st_mtime_ns == mtime
    # the same directory with another config is refused
    (run_dir / "result.json").unlink()
    other = task.resolve({**TINY, "solver": {**TINY["solver"], "lr": 0.01}})
    with pytest.raises(DlabError, match="holds another numpy-mlp config"):
        run_task(task, other, RunContext(run_dir, data_dir=str(data_dir), progress=False))


def test_numpy_mlp_divergence_is_a_result(tmp_path, data_dir):
    task = get_task("numpy-mlp")
    cfg = task.resolve({**TINY, "solver": {**TINY["solver"], "lr": 1e6, "update_rule": "sgd",
                                           "schedule": {"kind": "constant"}}})
    result = run_task(task, cfg, RunContext(tmp_path, data_dir=str(data_dir), progress=False))
    assert result["status"] == "diverged" and result["final"]["val_acc"] is None
    assert "iteration" in result["info"]["diverged"]
    assert read_result(tmp_path)["status"] == "diverged"


def test_old_numpy_results_read_like_new_ones(tmp_path):
    old = {"status": "finished", "engine": "numpy", "epochs": 2, "final_test_acc": 0.9,
           "best_test_acc": 0.91, "final_train_acc": 0.95, "train_time_s": 3.0,
           "session_time_s": 3.5, "augmented": True, "parameters": 100, "test_acc": 0.9,
           "test_errors": 30}
    (tmp_path / "result.json").write_text(json.dumps(old))
    r = read_result(tmp_path)
    assert r["task"] == "numpy-mlp" and r["final"]["val_acc"] == 0.9
    assert r["best"]["val_acc"] == 0.91 and r["params"] == 100 and r["info"]["augmented"]


@pytest.mark.parametrize("name, data, needle", [
    ("numpy-mlp", {"solver": {"lr": -1}}, "learning rate -1.0"),
    ("numpy-mlp", {"colour": 1}, "unknown config key 'colour'"),
    ("numpy-mlp", {"model": {"hidden": [8, 8, 8]}}, "expected one per hidden layer"),
    ("numpy-convnet", {"lr_decay": 1.5}, "lr_decay 1.5"),
    ("numpy-convnet", {"train_size": 0}, "train_size 0"),
    ("numpy-convnet", {"model": {"kernel": 4}}, "kernel 4"),
])
def test_resolve_errors_are_one_line(name, data, needle):
    with pytest.raises(DlabError, match=needle) as info:
        get_task(name).resolve(data)
    assert "\n" not in str(info.value)


def test_keys_are_stable_and_differ_by_value():
    for name in ("numpy-mlp", "numpy-convnet"):
        task = get_task(name)
        seed = task.seed_key.split(".")
        data = {seed[0]: {seed[1]: 5}} if len(seed) == 2 else {seed[0]: 5}
        assert task.resolve({}).hash() == task.resolve({}).hash()
        assert task.resolve(data).hash() != task.resolve({}).hash()
        cfg = task.resolve(data)
        assert task.resolve(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_numpy_tasks_import_neither_torch_nor_matplotlib():
    code = ("import sys; from dlab.tasks import get_task; "
            "[get_task(n).resolve({}) for n in ('numpy-mlp', 'numpy-convnet')]; "
            "import dlab.numpy_engine.mnist_mlp, dlab.numpy_engine.cifar_convnet; "
            "print('torch' in sys.modules, 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
