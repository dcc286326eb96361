"""Study gatech-hw2: the file validates and plans (shared default run, the numpy variants from
their own overrides, mymodel from its recipe file), and part 1's check task runs and passes."""

from __future__ import annotations

import pytest

from dlab.studies import load_study, plan_study
from dlab.tasks import get_task, run_task
from dlab.tasks.base import RunContext


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    return plan_study(load_study("gatech-hw2"), tmp_path_factory.mktemp("runs"))


def _by_use(plan):
    return {use: item for item in plan.runs for use in item.uses}


def test_the_study_has_both_parts_and_the_course_split(plan):
    study = load_study("gatech-hw2")
    assert study.course.startswith("Georgia Tech")
    keys = [q.key for q in study.questions]
    assert keys[:2] == ["p1-layers", "p1-convnet"] and "p2-mymodel" in keys
    for item in plan.runs:
        if item.task == "classification":
            assert (item.config.data.dataset, item.config.data.validation,
                    item.config.data.val_size) == ("cifar10", "holdout", 1000)
            assert item.config.train.eval_every > 0 and item.config.train.deliverables


def test_the_default_convnet_run_is_shared(plan):
    uses = _by_use(plan)
    default = uses[("p2-convnet", "convnet")]
    assert {("p2-filter-size", "7x7"), ("p2-filters", "32"), ("p2-optimizers", "adam")} \
        <= set(default.uses)
    cfg = default.config
    assert (cfg.model.name, cfg.model.filters, cfg.model.kernel) == ("convnet", (32,), 7)
    assert cfg.train.deliverables == "convnet"
    assert plan.variant_count() > len(plan.runs)


def test_part_one_variants_start_from_their_own_overrides(plan):
    uses = _by_use(plan)
    assert uses[("p1-layers", "checks")].task == "numpy-checks"
    numpy_runs = [uses[("p1-convnet", "numpy-convnet")],
                  uses[("p1-convnet", "numpy-convnet-constant-lr")]]
    assert [r.task for r in numpy_runs] == ["numpy-convnet"] * 2
    assert [r.config.lr_decay for r in numpy_runs] == [0.997, 1.0]
    assert numpy_runs[0].config.train_size == 49000 and numpy_runs[0].config.val_size == 1000


def test_mymodel_comes_from_its_recipe_file(plan):
    cfg = _by_use(plan)[("p2-mymodel", "mymodel")].config
    assert cfg.model.name == "airnet" and cfg.train.deliverables == "mymodel"
    assert cfg.train.tta == "flip-shift" and cfg.optim.name == "sgd"


def test_numpy_checks_task_passes_and_reports(tmp_path):
    task = get_task("numpy-checks")
    cfg = task.resolve({"timing_batch": 2, "repeats": 1})
    result = run_task(task, cfg, RunContext(tmp_path / "run", progress=False))
    final = result["final"]
    assert result["status"] == "finished" and final["passed"] == 1.0
    assert final["worst_rel_error"] < 1e-7
    assert final["conv_speedup"] > 1 and final["conv_max_diff"] < 1e-9
    section = task.report_section(tmp_path / "run")
    assert "conv_im2col" in section and "speed-up" in section


def test_numpy_checks_bad_input_is_one_line():
    from dlab.errors import DlabError

    with pytest.raises(DlabError, match=r"^timing_batch = 0; expected an integer >= 1$"):
        get_task("numpy-checks").resolve({"timing_batch": 0})
