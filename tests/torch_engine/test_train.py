"""The training loop on small slices of real Fashion-MNIST: outputs, determinism, resume,
divergence, locking, fine-tuning and evaluation."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from dlab.config import resolve
from dlab.errors import DlabError
from dlab.runs import read_jsonl, run_lock
from dlab.torch_engine.checkpoint import load_checkpoint, read_checkpoint
from dlab.torch_engine.evaluate import evaluate_checkpoint
from dlab.torch_engine.train import train_run

TINY = {"data": {"train_limit": 1024, "val_limit": 500}, "train": {"epochs": 2, "batch_size": 64}}


def tiny(**over):
    from dlab.config import merge

    return resolve(merge(TINY, over))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, data_dir):
    run = tmp_path_factory.mktemp("run")
    result = train_run(tiny(), run, data_dir=data_dir, device="cpu", progress=False)
    return run, result


def test_run_directory_holds_every_artefact(finished_run):
    run, result = finished_run
    for name in ("config.json", "manifest.json", "metrics.jsonl", "result.json", "curves.png",
                 "confusion.png", "confusion.json", "mistakes.png", "filters.png",
                 "predictions.npz", "checkpoints/best.json", "checkpoints/last.json"):
        assert (run / name).is_file(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    rows = read_jsonl(run / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert set(rows[0]) >= {"loss", "acc", "val_loss", "val_acc", "lr", "time_s", "params"}
    assert rows[0]["params"] == 21840 == result["params"]
    assert result["status"] == "finished" and result["epochs_completed"] == 2
    assert result["final"]["val_acc"] == rows[-1]["val_acc"]
    assert result["best"]["val_acc"] == max(r["val_acc"] for r in rows)
    assert result["task"] == "classification" and result["primary"] == {"name": "val_acc", "direction": "max"}
    assert rows[-1]["loss"] < rows[0]["loss"]  # it learns
    confusion = json.loads((run / "confusion.json").read_text())
    assert sum(map(sum, confusion["matrix"])) == 500


def test_tensorboard_has_the_expected_scalars(finished_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(finished_run[0] / "tb"))
    acc.Reload()
    assert {"loss", "acc", "val_loss", "val_acc", "lr"} <= set(acc.Tags()["scalars"])
    assert "samples" in acc.Tags()["images"]


def test_finished_run_is_not_retrained(finished_run, data_dir):
    run, result = finished_run
    before = (run / "metrics.jsonl").read_bytes()
    again = train_run(tiny(), run, data_dir=data_dir, device="cpu", progress=False)
    assert again == result and (run / "metrics.jsonl").read_bytes() == before


def test_same_seed_same_metrics_on_cpu(finished_run, tmp_path, data_dir):
    train_run(tiny(), tmp_path, data_dir=data_dir, device="cpu", progress=False)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]
    assert strip(read_jsonl(tmp_path / "metrics.jsonl")) == \
        strip(read_jsonl(finished_run[0] / "metrics.jsonl"))


def test_precision_bf16_trains_in_bfloat16_and_learns(finished_run, tmp_path, data_dir):
    """train.precision = "bf16" reaches the training step on a CPU: other numbers than the
    float32 run of the same seed, a close accuracy, and a key of its own."""
    result = train_run(tiny(train={"precision": "bf16"}), tmp_path, data_dir=data_dir,
                       device="cpu", progress=False)
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert rows[0]["loss"] != read_jsonl(finished_run[0] / "metrics.jsonl")[0]["loss"]
    assert abs(result["final"]["val_acc"] - finished_run[1]["final"]["val_acc"]) < 0.05
    assert tiny(train={"precision": "bf16"}).hash() != tiny().hash() == \
        tiny(train={"precision": "auto"}).hash()


def test_a_longer_twin_continues_the_finished_run_exactly(finished_run, tmp_path, data_dir):
    run, _ = finished_run
    longer = tiny(train={"epochs": 3})
    cont = train_run(longer, tmp_path / "cont", data_dir=data_dir, device="cpu", progress=False,
                     continue_from=run)
    scratch = train_run(longer, tmp_path / "scratch", data_dir=data_dir, device="cpu",
                        progress=False)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]
    rows = read_jsonl(tmp_path / "cont" / "metrics.jsonl")
    assert len(rows) == 3 and rows[:2] == read_jsonl(run / "metrics.jsonl")
    assert strip(rows) == strip(read_jsonl(tmp_path / "scratch" / "metrics.jsonl"))
    assert cont["final"]["val_acc"] == scratch["final"]["val_acc"]
    assert read_checkpoint(tmp_path / "cont" / "checkpoints" / "last")[0]["epoch"] == 3


def test_a_start_from_scratch_drops_rows_of_an_attempt_killed_before_its_checkpoint(
        finished_run, tmp_path, data_dir):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run[0], run)
    shutil.rmtree(run / "checkpoints")  # killed after writing rows, before any checkpoint
    (run / "result.json").unlink()
    train_run(tiny(), run, data_dir=data_dir, device="cpu", progress=False)
    assert [r["epoch"] for r in read_jsonl(run / "metrics.jsonl")] == [1, 2]


def test_only_a_shorter_twin_can_be_continued(finished_run, tmp_path, data_dir):
    run, _ = finished_run
    with pytest.raises(DlabError, match="not a shorter run of this config"):
        train_run(tiny(train={"epochs": 3}, optim={"lr": 0.02}), tmp_path, data_dir=data_dir,
                  device="cpu", progress=False, continue_from=run)


def test_other_run_dir_config_is_refused(finished_run, data_dir):
    with pytest.raises(DlabError, match="different config"):
        train_run(tiny(train={"seed": 2}), finished_run[0], data_dir=data_dir, progress=False)


def test_a_second_process_cannot_enter_a_locked_run(tmp_path, data_dir):
    with run_lock(tmp_path):
        with pytest.raises(DlabError, match="in use by another dlab process"):
            train_run(tiny(), tmp_path, data_dir=data_dir, progress=False)


def test_divergence_ends_the_run_cleanly(tmp_path, data_dir):
    cfg = tiny(optim={"lr": 1e6}, train={"epochs": 3})
    result = train_run(cfg, tmp_path, data_dir=data_dir, device="cpu", progress=False)
    assert result["status"] == "diverged"
    assert result["epochs_completed"] < 3
    assert result["final"]["val_acc"] is None  # not the accuracy of the epoch before
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "diverged"


def test_test_time_augmentation_decides_the_final_result_not_the_curve(tmp_path, data_dir):
    import numpy as np
    import torch

    from dlab.data import load_splits
    from dlab.torch_engine.batches import DeviceData
    from dlab.torch_engine.evaluate import evaluate

    cfg = tiny(train={"epochs": 1, "tta": "flip-shift"})
    result = train_run(cfg, tmp_path, data_dir=data_dir, device="cpu", progress=False)
    model, _, _ = load_checkpoint(tmp_path / "checkpoints" / "last")
    val = DeviceData(load_splits(cfg.data, data_dir)[1], cfg.data, torch.device("cpu"))
    augmented, single = evaluate(model, val, 100, tta="flip-shift"), evaluate(model, val, 100)
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert result["info"]["tta"] == "flip-shift"
    assert result["final"]["val_acc"] == pytest.approx(augmented.acc)
    assert result["final"]["single_view_val_acc"] == rows[-1]["val_acc"] == pytest.approx(single.acc)
    saved = np.load(tmp_path / "predictions.npz")
    np.testing.assert_array_equal(saved["predictions"], augmented.predictions)
    assert not np.array_equal(augmented.confidence, single.confidence)


def test_checkpoint_round_trip_and_eval_on_another_dataset(finished_run, data_dir):
    run, result = finished_run
    model, cfg, meta = load_checkpoint(run / "checkpoints" / "best")
    assert cfg == tiny() and meta["epoch"] == result["best_epoch"]
    same = evaluate_checkpoint(run, "fashion-mnist", data_dir=data_dir, device="cpu")
    other = evaluate_checkpoint(run / "checkpoints" / "last", "mnist", data_dir=data_dir)
    assert same["n"] == other["n"] == 10000
    assert 0 <= other["val_acc"] <= 1 and same["dataset"] == "fashion-mnist"


def test_corrupt_or_missing_checkpoint_is_a_clear_error(finished_run, tmp_path):
    with pytest.raises(DlabError, match="not found"):
        load_checkpoint(tmp_path / "nothing")
    run = finished_run[0]
    meta = json.loads((run / "checkpoints/best.json").read_text())
    copy = tmp_path / "best.json"
    copy.write_text(json.dumps(meta))
    blob = bytearray((run / "checkpoints" / meta["weights"]).read_bytes())
    blob[-1] ^= 0xFF
    (tmp_path / meta["weights"]).write_bytes(bytes(blob))
    with pytest.raises(DlabError, match="SHA-256"):
        read_checkpoint(copy)


def test_finetune_starts_from_the_checkpoint_weights(finished_run, tmp_path, data_dir):
    run, _ = finished_run
    source = str(run / "checkpoints" / "best")
    cfg = tiny(data={"dataset": "mnist"}, optim={"lr": 0.0005}, train={"init_from": source,
                                                                       "epochs": 1})
    result = train_run(cfg, tmp_path, data_dir=data_dir, device="cpu", progress=False)
    scratch = train_run(tiny(data={"dataset": "mnist"}, optim={"lr": 0.0005},
                             train={"epochs": 1}), tmp_path / "scratch", data_dir=data_dir,
                        progress=False)
    assert result["final"]["val_acc"] != scratch["final"]["val_acc"]
    with pytest.raises(DlabError, match="do not fit"):
        train_run(tiny(model={"width": 2.0}, train={"init_from": source}), tmp_path / "bad",
                  data_dir=data_dir, progress=False)


KILL_SCRIPT = """
import sys
from dlab.config import resolve
from dlab.torch_engine.train import train_run
cfg = resolve({"data": {"train_limit": 2000, "val_limit": 300},
               "train": {"epochs": 3, "batch_size": 32}})
train_run(cfg, sys.argv[1], data_dir=sys.argv[2], device="cpu", progress=False)
"""


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path, data_dir):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(killed), str(data_dir)])
    deadline = time.time() + 240
    while not (killed / "checkpoints" / "last.json").exists():
        assert proc.poll() is None and time.time() < deadline, "run ended before its first epoch"
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "result.json").exists()
    subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(killed), str(data_dir)], check=True)
    subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(clean), str(data_dir)], check=True)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]
    assert strip(read_jsonl(killed / "metrics.jsonl")) == strip(read_jsonl(clean / "metrics.jsonl"))
    assert not list(killed.rglob("*.tmp")), "a temporary file was left behind"
    for path in (killed / "checkpoints").glob("*.json"):
        read_checkpoint(path)  # verifies the checksum of every checkpoint left
    assert json.loads((killed / "result.json").read_text())["epochs_completed"] == 3
