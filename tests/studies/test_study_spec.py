"""Study files: the built-in studies validate, malformed files fail early with file/line/key."""

from __future__ import annotations

import pytest

from dlab.errors import DlabError
from dlab.studies import builtin_studies, load_study, plan_study

GOOD = """name = "s"
[base]
train.epochs = 2
[[questions]]
key = "q1"
title = "t"
[[questions.variants]]
label = "a"
[[questions.variants]]
label = "b"
set = { "model.dropout" = 0.25 }
"""


def write(tmp_path, text):
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", sorted(builtin_studies()))
def test_every_builtin_study_validates_and_plans(name, tmp_path):
    study = load_study(name)
    plan = plan_study(study, tmp_path)
    assert plan.runs and len(plan.runs) <= plan.variant_count()
    assert all(item.run_dir.parent == tmp_path.resolve() / study.name for item in plan.runs)


def test_fashion_a1_has_the_assignment_questions_defaults_and_references(tmp_path):
    study = load_study("fashion-a1")
    assert [q.key for q in study.questions] == [f"q{i}" for i in range(1, 16)]
    assert all(q.explanation and q.text for q in study.questions)
    plan = plan_study(study, tmp_path)
    default = plan.lookup("q1", "fashion-mnist")[0].config
    assert (default.train.batch_size, default.train.eval_batch_size, default.train.epochs,
            default.train.seed) == (256, 1000, 10, 1)
    assert (default.optim.name, default.optim.lr, default.optim.momentum) == ("sgd", 0.01, 0.5)
    assert default.data.mean == (0.1307,) and default.data.validation == "test"
    assert study.question("q1").reference == {"mnist": 97.27, "fashion-mnist": 82.07}
    assert study.question("q2").reference["fashion-20"] == 85.37
    assert plan.lookup("q4", "adam")[0].config.optim.lr == 1e-3  # library default
    assert plan.lookup("q14", "on-mnist")[0].kind == "eval"


def test_fashion_a1_dedupes_the_default_run_and_wires_the_steps(tmp_path):
    plan = plan_study(load_study("fashion-a1"), tmp_path)
    default = plan.lookup("q1", "fashion-mnist")[0]
    for q, label in [("q3", "lr-0.01"), ("q4", "sgd"), ("q5", "p0.5"), ("q6", "b256"),
                     ("q7", "x1"), ("q8", "default")]:
        assert plan.lookup(q, label)[0].key == default.key
        assert (q, label) in default.uses
    assert len(plan.runs) < plan.variant_count()
    ultimate = plan.lookup("q13", "ultimate")[0]
    eval14, eval15 = plan.lookup("q14", "on-mnist")[0], plan.lookup("q15", "unchanged")[0]
    assert eval14.key == eval15.key and eval14.depends_on == ultimate.key
    ft = plan.lookup("q15", "finetuned")[0]
    assert ft.depends_on == ultimate.key and ft.config.data.dataset == "mnist"
    assert ft.config.optim.lr == pytest.approx(ultimate.config.optim.lr * 0.05)
    assert ft.config.train.init_from == str(ultimate.run_dir / "checkpoints" / "best")
    assert ft.config.model == ultimate.config.model
    keys = [r.key for r in plan.runs]
    assert keys.index(ultimate.key) < keys.index(ft.key) and len(set(keys)) == len(keys)


def test_a_longer_twin_depends_on_the_shorter_run_when_the_schedule_allows(tmp_path):
    text = GOOD + """[[questions.variants]]
label = "long"
set = { "train.epochs" = 4 }
[[questions.variants]]
label = "cos"
set = { "optim.schedule" = "cosine" }
[[questions.variants]]
label = "cos-long"
set = { "optim.schedule" = "cosine", "train.epochs" = 4 }
"""
    plan = plan_study(load_study(write(tmp_path, text)), tmp_path)
    a, long = plan.lookup("q1", "a")[0], plan.lookup("q1", "long")[0]
    assert long.depends_on == a.key and long.continues == a.run_dir and a.continues is None
    assert plan.lookup("q1", "cos-long")[0].depends_on is None  # cosine depends on the length
    keys = [r.key for r in plan.runs]
    assert keys.index(a.key) < keys.index(long.key)


def test_fashion_a1_twenty_epoch_runs_continue_the_ten_epoch_ones(tmp_path):
    plan = plan_study(load_study("fashion-a1"), tmp_path)
    for dataset in ("mnist", "fashion-mnist"):
        long = [r for r in plan.runs if r.config.train.epochs == 20
                and r.config.data.dataset == dataset]
        assert len(long) == 1
        assert long[0].depends_on == plan.lookup("q1", dataset)[0].key


def test_seeds_give_one_run_per_seed(tmp_path):
    path = write(tmp_path, GOOD.replace('title = "t"', 'title = "t"\nseeds = [1, 2, 3]'))
    plan = plan_study(load_study(path), tmp_path)
    runs = plan.lookup("q1", "b")
    assert sorted(r.config.train.seed for r in runs) == [1, 2, 3]
    assert len({r.key for r in runs}) == 3


def test_plan_keys_do_not_depend_on_the_runs_root(tmp_path):
    study = load_study("fashion-a1")
    a = [r.key for r in plan_study(study, tmp_path / "a").runs]
    b = [r.key for r in plan_study(study, tmp_path / "b").runs]
    assert a == b


@pytest.mark.parametrize("edit, expect", [
    (("[base]", "[base]\ntrain.epochz = 3"), ["epochz", "base"]),
    (('label = "b"', 'label = "b"\ncolour = 1'), ["colour", "line 11", "q1/b"]),
    (('set = { "model.dropout" = 0.25 }', 'set = { "model.dropout" = 2.5 }'),
     ["dropout = 2.5", "q1/b", "line 11"]),
    (('set = { "model.dropout" = 0.25 }', 'set = { "optim.lrr" = 0.1 }'), ["lrr", "q1/b"]),
    (('label = "a"', 'label = "a"\nkind = "eval"\nsource = "q9/x"\ndataset = "mnist"'),
     ["q9/x", "no such question"]),
    (('label = "b"', 'label = "b"\nkind = "evaluate"'), ["evaluate", "kind"]),
    (('label = "b"', 'label = "b"\nconfig = "nope.toml"'), ["nope.toml", "not found", "q1/b"]),
    (('label = "b"', 'label = "a"'), ["'a' is used twice"]),
    (('key = "q1"', 'key = "Q 1"'), ["Q 1"]),
    (('title = "t"', "title = 't\n"), ["study.toml"]),
    (('name = "s"', 'name = "s"\nthreads = -1'), ["threads", "-1", "integer >= 1", "line 2"]),
    (('name = "s"', 'name = "s"\nthreads = "two"'), ["threads", "'two'"]),
])
def test_malformed_study_files_name_file_key_and_line(tmp_path, edit, expect):
    path = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(DlabError) as info:
        load_study(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for part in expect:
        assert part in message


def test_unknown_study_name_lists_the_builtins():
    with pytest.raises(DlabError, match="fashion-a1"):
        load_study("no-such-study")


def test_study_cli_rejects_a_bad_file_before_training(tmp_path, capsys):
    from dlab.cli import main

    path = write(tmp_path, GOOD.replace("[base]", "[base]\nmodel.widht = 2"))
    assert main(["study", "run", str(path), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "widht" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_q13_uses_the_recipe_file_beside_the_study(tmp_path):
    from dlab.config import load_run_config
    from dlab.studies.spec import BUILTIN_DIR

    plan = plan_study(load_study("fashion-a1"), tmp_path)
    recipe = load_run_config(BUILTIN_DIR / "ultimate-fashion.toml")
    assert plan.lookup("q13", "ultimate")[0].config == recipe
    assert "ultimate-fashion" not in builtin_studies()  # a run config, not a study
