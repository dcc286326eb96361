"""`dlab tune`: search-space validation, trials stored as ordinary runs, resumable SQLite study."""

from __future__ import annotations

import json

import pytest

from dlab.errors import DlabError
from dlab.studies.tune import load_tune_spec, run_tune

SPACE = """name = "t"
trials = 2
seed = 0
[base]
data.train_limit = 512
data.val_limit = 256
model.width = 0.5
train.epochs = 2
train.batch_size = 128
[space."optim.lr"]
type = "float"
low = 0.005
high = 0.2
log = true
[space."model.dropout"]
type = "categorical"
choices = [0.0, 0.5]
"""


def write(tmp_path, text):
    path = tmp_path / "space.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("edit, expect", [
    (('type = "float"', 'type = "floaty"'), "floaty"),
    (("low = 0.005", "low = 0.5"), "low < high"),
    (("low = 0.005", "low = 0.0"), "log = true needs low > 0"),
    (("choices = [0.0, 0.5]", "choices = [0.0, 1.5]"), "dropout = 1.5"),
    (('[space."optim.lr"]', '[space."optim.lrr"]'), "lrr"),
    (("trials = 2", "trails = 2"), "trails"),
])
def test_bad_search_spaces_fail_with_the_file_and_key(tmp_path, edit, expect):
    path = write(tmp_path, SPACE.replace(*edit))
    with pytest.raises(DlabError) as info:
        load_tune_spec(path)
    assert str(path) in str(info.value) and expect in str(info.value)


def test_tune_trials_are_runs_and_the_study_resumes(tmp_path, data_dir):
    spec = load_tune_spec(write(tmp_path, SPACE))
    assert [p.key for p in spec.params] == ["optim.lr", "model.dropout"]
    out = run_tune(spec, tmp_path / "runs", data_dir=data_dir, device="cpu", echo=lambda s: None)
    root = tmp_path / "runs" / "tune" / "t"
    assert out["storage"] == f"sqlite:///{root.resolve() / 'optuna.db'}"
    assert (root / "optuna.db").exists() and sum(out["trials"].values()) == 2
    results = [json.loads(p.read_text()) for p in root.glob("*/result.json")]
    assert 1 <= len(results) <= 2  # a repeated config reuses its run
    finished = [r for r in results if r["status"] == "finished"]
    assert out["best_value"] == max(r["best"]["val_acc"] for r in finished)
    cfg = json.loads((root / out["best_run_dir"].rsplit("/", 1)[1] / "config.json").read_text())
    assert cfg["optim"]["lr"] == pytest.approx(out["best_params"]["optim.lr"])
    again = run_tune(spec, tmp_path / "runs", trials=1, data_dir=data_dir, device="cpu",
                     echo=lambda s: None)
    assert sum(again["trials"].values()) == 3  # same study, one more trial


def test_list_valued_choices_are_drawn_without_optuna_warnings(recwarn):
    """t_listchoice: categorical choices that are lists (model.hidden) draw cleanly."""
    import optuna

    from dlab.studies.tune import ParamSpec, suggest

    spec = (ParamSpec("model.hidden", "categorical", choices=([32], [64, 64])),)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = [suggest(study.ask(), spec)["model.hidden"] for _ in range(8)]
    assert {tuple(d) for d in drawn} == {(32,), (64, 64)}
    assert not [w for w in recwarn if "categorical" in str(w.message)]


def test_a_search_over_another_task_uses_its_primary_metric_and_direction(tmp_path, data_dir):
    """dlab tune works for every task: here the numpy MLP (primary val_acc, max) — its config
    resolves through its own task and its trials are that task's runs."""
    from dlab.studies.tune import load_tune_spec, run_tune

    path = tmp_path / "np.toml"
    path.write_text('''
name = "numpy-lr"
trials = 2
[base]
task = "numpy-mlp"
train_limit = 500
test_limit = 200
solver.epochs = 1
[space."solver.lr"]
type = "categorical"
choices = [0.01, 0.05]
''')
    spec = load_tune_spec(path)
    out = run_tune(spec, tmp_path / "runs", data_dir=str(data_dir), echo=lambda line: None)
    assert out["primary"] == "val_acc" and out["direction"] == "max"
    assert out["trials"].get("complete", 0) == 2 and 0.1 < out["best_value"] <= 1.0
    from dlab.results import read_result

    assert read_result(out["best_run_dir"])["task"] == "numpy-mlp"


def test_opening_the_storage_looks_again_when_another_process_made_its_tables(tmp_path,
                                                                               monkeypatch):
    """Two tune processes creating one SQLite file at once: the loser's duplicate schema row
    (seen in CI) is a race, not an error; other database errors are one line naming the URL."""
    import optuna

    from dlab.studies.tune import open_storage

    real, calls = optuna.storages.RDBStorage, []

    def racing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("(sqlite3.IntegrityError) UNIQUE constraint failed: "
                               "alembic_version.version_num")
        return real(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    assert open_storage(url) is not None and len(calls) == 2

    def broken(*args, **kwargs):
        raise RuntimeError("disk I/O error")

    monkeypatch.setattr(optuna.storages, "RDBStorage", broken)
    with pytest.raises(DlabError, match="optuna.db"):
        open_storage(url)
