"""Damaged run files, read-only runs directories and a full disk (reliability findings r08, r09,
r10, r11, c68, c76, c78, c80, g01, g02, g03, g05, g06, g08, g10, r03, r04, r05, r06, x03, c89,
c90): each is reported for its run or as one line naming the path, and never stops a command
from handling the other runs."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dlab.cli import main
from dlab.results import read_result
from dlab.studies import load_study, plan_study
from dlab.torch_engine.checkpoint import read_checkpoint

STUDY = """name = "qa"
[base]
data.dataset = "mnist"
data.train_limit = 300
data.val_limit = 200
model.width = 0.5
train.epochs = 1
train.batch_size = 100
[[questions]]
key = "q1"
title = "lr"
[[questions.variants]]
label = "a"
set = { "optim.lr" = 0.05 }
[[questions.variants]]
label = "b"
set = { "optim.lr" = 0.1 }
"""

# (file in run a, bytes written over it): the four ways one file of a run is found damaged
DAMAGES = {
    "empty result.json": ("result.json", b""),  # findings: r08 (status), r09 (report), r10 (run)
    "corrupt config.json": ("config.json", b"{"),  # findings: r11 (dlab runs)
    "half-written metrics.jsonl": ("metrics.jsonl", b'{"epoch": 1, "val_a\n{"epoch": 1}\n'),
    "junk checkpoint JSON": ("checkpoints/best.json", b"junk"),
}


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory, data_dir):
    """A study of two finished 1-epoch items: (study file, runs root, {label: run dir})."""
    top = tmp_path_factory.mktemp("study")
    study = top / "qa.toml"
    study.write_text(STUDY)
    runs = top / "runs"
    assert main(["study", "run", str(study), "--runs-dir", str(runs), "--threads", "1",
                 "--data-dir", str(data_dir)]) == 0
    return study, runs


def _copy(finished_study, dst: Path) -> tuple[Path, dict[str, Path]]:
    study, runs = finished_study
    shutil.copytree(runs, dst)
    plan = plan_study(load_study(study), dst)
    return dst, {label: plan.lookup("q1", label)[0].run_dir for label in ("a", "b")}


def _files(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and p.name != "run.lock"}


@pytest.fixture(params=list(DAMAGES))
def damaged_study(request, finished_study, tmp_path):
    """The study with one file of run a damaged: (study, runs, runs by label, damaged path)."""
    runs, by_label = _copy(finished_study, tmp_path / "runs")
    name, data = DAMAGES[request.param]
    path = by_label["a"] / name
    path.write_bytes(data)
    return finished_study[0], runs, by_label, path


def _row(out: str, run: Path) -> str:
    return next(line for line in out.splitlines() if line.startswith(run.name)
                or line.startswith(f"{run.parent.name}/{run.name}"))


def test_runs_lists_the_damaged_run_and_the_others(damaged_study, capsys):
    _, runs, by_label, path = damaged_study
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "damaged" in _row(out, by_label["a"]) and f"damaged: {path}:" in out
    assert "finished" in _row(out, by_label["b"])


def test_study_status_names_the_damaged_file(damaged_study, capsys):
    study, runs, by_label, path = damaged_study
    assert main(["study", "status", str(study), "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert f"damaged: {path}:" in out and "1 damaged, 1 finished of 2 items" in out


def test_report_shows_the_damaged_variant_and_the_others(damaged_study, capsys):
    study, runs, by_label, path = damaged_study
    assert main(["report", str(study), "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "variants: 1 damaged, 1 finished" in out and f"damaged q1/a: {path}:" in out
    md = (runs / "qa" / "report" / "report.md").read_text()
    assert "Variant q1/a is damaged" in md and str(path) in md


def test_train_resume_of_a_damaged_run_is_one_line_and_changes_nothing(damaged_study, capsys):
    _, _, by_label, path = damaged_study
    before = _files(by_label["a"])
    assert main(["train", "--resume", str(by_label["a"]), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1 and "damaged" in captured.err
    assert str(by_label["a"]) in captured.err and path.name in captured.err
    assert captured.out == "" and _files(by_label["a"]) == before


def test_study_run_fails_the_damaged_item_and_finishes_the_others(damaged_study, capsys,
                                                                  data_dir):
    """Run a is reported failed with its file named and not trained over; run b, interrupted
    after its last epoch, is completed."""
    study, runs, by_label, path = damaged_study
    (by_label["b"] / "result.json").unlink()
    before = _files(by_label["a"])
    assert main(["study", "run", str(study), "--runs-dir", str(runs), "--threads", "1",
                 "--data-dir", str(data_dir)]) == 1
    out = capsys.readouterr().out
    assert "ran 1 items" in out and "1 failed" in out
    assert f"failed {by_label['a'].name}: damaged: {path}:" in out
    assert read_result(by_label["b"])["status"] == "finished"
    assert _files(by_label["a"]) == before


def test_a_torn_last_metrics_line_is_not_damage(finished_study, tmp_path, capsys):
    """A crash mid-append leaves a last line without its newline: readers skip it."""
    runs, by_label = _copy(finished_study, tmp_path / "runs")
    with open(by_label["a"] / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 2, "val_')
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "damaged" not in out and "finished" in _row(out, by_label["a"])


@pytest.mark.parametrize("damage,needle", [
    (lambda meta: meta.pop("in_shape"), "is damaged or not a classifier's"),
    (lambda meta: meta.update(config=[1]), "is damaged or not a classifier's"),
])
def test_eval_of_a_checkpoint_with_bad_facts_is_one_line(finished_study, tmp_path, capsys,
                                                         damage, needle):
    import json

    _, by_label = _copy(finished_study, tmp_path / "runs")
    best = by_label["a"] / "checkpoints" / "best.json"
    meta = json.loads(best.read_text())
    damage(meta)
    best.write_text(json.dumps(meta))
    assert main(["eval", str(by_label["a"]), "--dataset", "mnist"]) == 2
    err = capsys.readouterr().err
    assert needle in err and str(best) in err and len(err.strip().splitlines()) == 1


def test_checkpoint_whose_weights_are_another_models_is_one_line(finished_study, tmp_path,
                                                                 capsys):
    """c80: a checkpoint JSON of a net naming (with a valid SHA-256) the weights of an MLP."""
    import json

    from dlab.config import resolve

    _, by_label = _copy(finished_study, tmp_path / "runs")
    best = by_label["a"] / "checkpoints" / "best.json"
    meta = json.loads(best.read_text())
    cfg = resolve({**meta["config"], "model": {"name": "mlp"}}).to_dict()
    best.write_text(json.dumps({**meta, "config": cfg}))
    assert main(["eval", str(by_label["a"]), "--dataset", "mnist"]) == 2
    err = capsys.readouterr().err
    assert "do not fit model 'mlp'" in err and len(err.strip().splitlines()) == 1


def test_finetune_of_a_truncated_checkpoint_is_one_line_and_leaves_no_run(
        finished_study, tmp_path, capsys):
    """c78: best.json cut in half; c79: weights cut: refused before any run directory."""
    _, by_label = _copy(finished_study, tmp_path / "runs")
    best = by_label["a"] / "checkpoints" / "best.json"
    text = best.read_text()
    out = tmp_path / "ft"
    for cut in (lambda: best.write_text(text[: len(text) // 2]),
                lambda: (best.write_text(text), _truncate_weights(best))):
        cut()
        assert main(["finetune", str(by_label["a"]), "--dataset", "mnist", "--runs-dir",
                     str(out), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert str(by_label["a"] / "checkpoints") in err and len(err.strip().splitlines()) == 1
        assert not out.exists() or not any(out.iterdir())


def _truncate_weights(best: Path) -> None:
    import json

    weights = best.parent / json.loads(best.read_text())["weights"]
    weights.write_bytes(weights.read_bytes()[:1000])


# ---------------------------------------------------------------------------------------------
# read-only runs directories and a full disk: real tmpfs mounts when root, else chmod


def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@contextlib.contextmanager
def _tmpfs(path: Path, size: str = "4m"):
    path.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def _read_only(path: Path):
    """`path` (already filled) made read-only: a remount when it is a tmpfs, else chmod."""
    if _can_mount():
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        yield
        return
    modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")]}
    for p in modes:
        p.chmod(modes[p] & 0o555)
    try:
        yield
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


@pytest.fixture
def read_only_runs(finished_study, tmp_path):
    """The study's runs (item b made interrupted) on a read-only place: (study, root, runs)."""
    place = tmp_path / "ro"
    mount = _tmpfs(place) if _can_mount() else contextlib.nullcontext(place.mkdir() or place)
    with mount:
        runs, by_label = _copy(finished_study, place / "runs")
        (by_label["b"] / "result.json").unlink()
        with _read_only(place):
            if not _can_mount() and os.access(place, os.W_OK):
                pytest.skip("chmod does not make folders read-only for this user")
            yield finished_study[0], place, runs, by_label


def test_read_only_commands_work_on_a_read_only_runs_dir(read_only_runs, tmp_path, capsys):
    study, _, runs, by_label = read_only_runs
    assert main(["runs", "--runs-dir", str(runs)]) == 0  # findings: g03
    out = capsys.readouterr().out
    assert "finished" in _row(out, by_label["a"]) and "interrupted" in _row(out, by_label["b"])
    assert main(["study", "status", str(study), "--runs-dir", str(runs)]) == 0  # findings: r05
    assert "1 finished, 1 interrupted of 2 items" in capsys.readouterr().out
    assert main(["report", str(study), "--runs-dir", str(runs), "--out",  # findings: r04
                 str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "report.html").stat().st_size > 1000


@pytest.mark.parametrize("argv,named", [
    (["train", "--runs-dir", "{ro}/new"], "{ro}/new"),  # g01
    (["train", "--runs-dir", "{runs}"], "{runs}"),  # g02: the existing runs dir, read-only
    (["train", "--resume", "{b}"], "{b}"),  # g05
    (["predict", "{a}", "--out", "{ro}/p.csv"], "{ro}/p.csv"),  # g06
    (["report", "{study}", "--runs-dir", "{runs}"], "{runs}/qa/report"),
    (["study", "run", "{study}", "--runs-dir", "{runs}", "--threads", "1"], "{runs}/qa"),
], ids=["train", "train-runs-dir", "resume", "predict", "report", "study-run"])
def test_writing_into_a_read_only_place_is_one_line_naming_it(read_only_runs, capsys, data_dir,
                                                              argv, named):
    study, place, runs, by_label = read_only_runs
    names = {"ro": place, "a": by_label["a"], "b": by_label["b"], "study": study, "runs": runs}
    rc = main([a.format(**names) for a in argv] + ["--data-dir", str(data_dir)] * (
        argv[0] != "report"))
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert named.format(**names) in err
    assert "read-only" in err.lower() or "permission denied" in err.lower()


@pytest.mark.parametrize("argv,needle", [
    (["train", "--runs-dir", "{file}"], "is a file; expected a folder"),  # x03
    (["predict", "{a}", "--out", "{dir}"], "is a folder; expected a CSV file path"),  # c89
    (["report", "{study}", "--runs-dir", "{runs}", "--out", "{file}"], "{file}"),  # r06
    (["predict", "{a}", "--out", "/proc/forbidden/x.csv"],  # c90: the folder does not exist
     "folder '/proc/forbidden' does not exist"),
], ids=["runs-dir-file", "predict-out-dir", "report-out-file", "predict-out-missing-folder"])
def test_a_file_where_a_folder_belongs_is_one_line(finished_study, tmp_path, capsys, data_dir,
                                                   argv, needle):
    runs, by_label = _copy(finished_study, tmp_path / "runs")
    (tmp_path / "f.txt").write_text("x")
    names = {"file": tmp_path / "f.txt", "dir": tmp_path, "a": by_label["a"],
             "study": finished_study[0], "runs": runs}
    rc = main([a.format(**names) for a in argv] + ["--data-dir", str(data_dir)] * (
        argv[0] != "report"))
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and needle.format(**names) in err, err
    assert (tmp_path / "f.txt").read_text() == "x"


def _resume_on_a_full_disk_fails_in_one_line(place, run, capsys, data_dir):
    """Fill `place` but 16 kB, `train --resume RUN`: rc 2, one line naming the run and the full
    disk, the last checkpoint unchanged, no temporary file left. Returns the filler file."""
    last = read_checkpoint(run / "checkpoints" / "last")[0]
    free = os.statvfs(place)
    filler = place / "filler"
    filler.write_bytes(b"\0" * (free.f_bavail * free.f_frsize - 16_384))
    assert main(["train", "--resume", str(run), "--quiet", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "No space left on device" in err and str(run) in err
    assert read_checkpoint(run / "checkpoints" / "last")[0] == last
    assert not list(run.rglob("*.tmp"))
    return filler


@pytest.mark.skipif(not _can_mount(), reason="needs root to mount a 2 MB tmpfs")
def test_a_full_disk_is_one_line_and_the_checkpoint_stays_intact(finished_study, tmp_path,
                                                                 capsys, data_dir):
    """g08: epoch 2's checkpoint does not fit; the epoch-1 checkpoint stays loadable and, with
    space freed, the run resumes to the end."""
    import json

    with _tmpfs(tmp_path / "full", size="2m") as place:
        _, by_label = _copy(finished_study, place / "runs")
        run = by_label["a"]
        shutil.rmtree(by_label["b"])
        (run / "result.json").unlink()
        cfg = json.loads((run / "config.json").read_text())
        cfg["train"]["epochs"] = 2  # the held config: resume trains a second epoch
        (run / "config.json").write_text(json.dumps(cfg))
        filler = _resume_on_a_full_disk_fails_in_one_line(place, run, capsys, data_dir)
        filler.unlink()
        assert main(["train", "--resume", str(run), "--quiet", "--data-dir",
                     str(data_dir)]) == 0
        assert read_result(run)["epochs_completed"] == 2


@pytest.mark.skipif(not _can_mount(), reason="needs root to mount a 2 MB tmpfs")
def test_a_disk_full_while_writing_figures_is_one_line_and_resumes(finished_study, tmp_path,
                                                                   capsys, data_dir):
    """g10: the last epoch is checkpointed, then the disk fills while the run's figures are
    written (PIL's PNG writer): one line naming the run, no result.json, no truncated PNG, the
    checkpoint intact; with space freed, `--resume` completes the run."""
    with _tmpfs(tmp_path / "full", size="2m") as place:
        _, by_label = _copy(finished_study, place / "runs")
        run = by_label["a"]
        shutil.rmtree(by_label["b"])
        for name in ("result.json", "predictions.npz", "confusion.json", *(
                p.name for p in run.glob("*.png"))):
            (run / name).unlink(missing_ok=True)
        filler = _resume_on_a_full_disk_fails_in_one_line(place, run, capsys, data_dir)
        assert not (run / "result.json").exists()
        for png in run.glob("*.png"):  # none left half-written
            assert png.read_bytes().endswith(b"IEND\xaeB`\x82"), png
        filler.unlink()
        assert main(["train", "--resume", str(run), "--quiet", "--data-dir",
                     str(data_dir)]) == 0
        assert read_result(run)["status"] == "finished"
        assert (run / "curves.png").stat().st_size > 1000
