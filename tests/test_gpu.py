"""The CUDA paths of every trainer, on tiny slices: skipped where no CUDA device is present (CI,
this project's CPU machines); run on a lent GPU machine by bench/gpu_check.sh.

Each task trains under bf16 autocast on the GPU ("auto" precision), writes its run directory,
and resumes from a checkpoint written on the GPU (its generator states are CPU byte tensors:
a CUDA generator rejects any other)."""

from __future__ import annotations

import csv
import os
import warnings

import pytest
import torch

from dlab.config import resolve
from dlab.runs import read_jsonl
from dlab.tasks import get_task
from dlab.tasks.base import Callback
from dlab.torch_engine.evaluate import autocast, resolve_device
from dlab.torch_engine.train import train_run
from dlab.torch_engine.trainer import fit

# DLAB_GPU_TEST_DEVICE=cpu runs these tests' logic on a CPU (to check the tests themselves)
DEVICE = os.environ.get("DLAB_GPU_TEST_DEVICE", "cuda")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(),
                                 reason="needs a CUDA device")]


class _Stop(Exception):
    pass


def _stop(row):
    raise _Stop


@pytest.mark.skipif(DEVICE != "cuda", reason="CUDA only")
def test_auto_device_and_precision_pick_cuda_bf16():
    dev = resolve_device("auto")
    assert dev.type == "cuda"
    with autocast(dev, "auto"):
        out = torch.ones(4, 4, device=dev) @ torch.ones(4, 4, device=dev)
    assert out.dtype == torch.bfloat16


AIRNET = {"data": {"dataset": "cifar10", "validation": "holdout", "val_size": 1000,
                   "train_limit": 2048, "val_limit": 500,
                   "augment": {"crop_padding": 2, "crop_fill": "reflect", "flip": True,
                               "flip_mode": "alternate"}},
          "model": {"name": "airnet", "widths": [16, 32, 32], "whiten_bias_epochs": 1},
          "optim": {"lr": 0.2, "momentum": 0.85, "nesterov": True, "schedule": "onecycle",
                    "lookahead": 5},
          "train": {"epochs": 2, "batch_size": 256, "label_smoothing": 0.2,
                    "tta": "flip-shift", "eval_every": 4, "deliverables": "mymodel"}}


def test_classifier_trains_resumes_and_delivers_on_cuda(tmp_path, data_dir):
    cfg = resolve(AIRNET)
    whole = train_run(cfg, tmp_path / "whole", data_dir=data_dir, device=DEVICE, progress=False)
    assert whole["status"] == "finished" and whole["info"]["device"] == DEVICE
    assert 0.1 < whole["final"]["test_acc"] <= 1.0  # above chance after 16 steps
    run = tmp_path / "partial"
    with pytest.raises(_Stop):
        train_run(cfg, run, data_dir=data_dir, device=DEVICE, progress=False, on_epoch=_stop)
    resumed = train_run(cfg, run, data_dir=data_dir, device=DEVICE, progress=False)
    assert resumed["status"] == "finished" and resumed["epochs_completed"] == 2
    # the resumed second epoch trains on the whole run's batches (the CUDA generator's state
    # came back), so its loss is close to the whole run's (cuDNN's convolution algorithms need
    # not be bitwise deterministic, so not equal)
    a, b = read_jsonl(tmp_path / "whole" / "metrics.jsonl"), read_jsonl(run / "metrics.jsonl")
    assert b[1]["loss"] == pytest.approx(a[1]["loss"], rel=0.05)
    with (run / "predictions.csv").open(newline="") as fh:
        assert len(list(csv.reader(fh))) == 1 + 500
    assert (run / "mymodel.log").read_text().splitlines()[-1].startswith("test accuracy: ")


@pytest.mark.parametrize("kind", ["dcgan", "wgan-gp", "acgan"])
def test_gan_kinds_train_and_resume_on_cuda(kind, tmp_path, data_dir):
    task = get_task("gan")
    cfg = task.resolve({"data": {"dataset": "mnist", "train_limit": 256},
                        "model": {"kind": kind, "g_width": 8, "d_width": 8},
                        "train": {"epochs": 2, "batch_size": 32, "grid": 16},
                        "eval": {"n_samples": 300, "n_epoch": 200, "kid_subsets": 5,
                                 "kid_subset_size": 100, "extractor_epochs": 1,
                                 "extractor_train_limit": 2000, "test_limit": 1000}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the small-N FD warning
        run = tmp_path / "run"
        with pytest.raises(KeyboardInterrupt):
            fit(task, cfg, run, data_dir=data_dir, device=DEVICE, progress=False,
                callbacks=[_KeyboardStop()])
        result = fit(task, cfg, run, data_dir=data_dir, device=DEVICE, progress=False)
    assert result["status"] == "finished" and result["epochs_completed"] == 2
    assert result["final"]["fd_dlab"] > 0
    assert (run / "samples" / "epoch-002.png").is_file()


class _KeyboardStop(Callback):
    """Interrupt after the first epoch's checkpoint, as Ctrl-C would."""

    def on_epoch_end(self, run, row):
        raise KeyboardInterrupt


def test_captioner_trains_and_resumes_on_cuda(tmp_path, data_dir):
    from dlab.captioning.synth import SynthSpec, generate

    root = generate(SynthSpec(train=16, test=4, compositional=4, seed=2), tmp_path / "set",
                    data_dir=str(data_dir))
    task = get_task("caption")
    cfg = task.resolve({"data": {"root": str(root), "frame_stride": 8},
                        "model": {"hidden": 24, "embed": 12},
                        "train": {"epochs": 2, "batch_size": 4, "captions_per_video": 2,
                                  "examples": 2, "scst_epochs": 1}})
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        fit(task, cfg, run, device=DEVICE, progress=False, callbacks=[_KeyboardStop()])
    result = fit(task, cfg, run, device=DEVICE, progress=False)
    assert result["status"] == "finished" and result["final"]["cider_d"] is not None
    assert list((run / "examples").glob("*.png"))
