"""Evaluation: loss, accuracy and predictions of a model over a resident dataset.

Everything accumulates on the device; the host syncs once at the end.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dlab.allocator import keep_freed_memory
from dlab.config import TTA_VIEWS
from dlab.errors import DlabError
from dlab.torch_engine.batches import DeviceData


@dataclass(frozen=True)
class EvalResult:
    """Mean loss, accuracy (fraction), and per-image predictions with their softmax confidence."""

    loss: float
    acc: float
    n: int
    predictions: np.ndarray  # (N,) int64
    confidence: np.ndarray  # (N,) float32, the softmax probability of the predicted class


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' → CUDA when available else CPU; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DlabError("--device cuda: no CUDA device is available; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise DlabError(f"unknown device {name!r}; expected auto, cpu or cuda")
    return torch.device(name)


def autocast(device: torch.device, precision: str = "auto"):
    """bf16 autocast for `train.precision`: "auto" = on CUDA only (a CPU without AMX-BF16 or
    AVX512-BF16 gains nothing from it), "bf16" = on any device, "fp32" = never."""
    on = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=on)


def warn_slow_bf16(device: torch.device, precision: str) -> None:
    """One warning when bf16 autocast would run on a CPU without native bf16 arithmetic
    (AVX512-BF16 or AMX-BF16), where it is slower than float32."""
    if (precision == "bf16" and device.type == "cpu"
            and not torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        warnings.warn("train.precision = 'bf16' on a CPU without AVX512-BF16 or AMX-BF16: "
                      "slower than float32 here; set train.precision = 'fp32'", stacklevel=2)


def _padded(x: torch.Tensor, black: torch.Tensor | None) -> torch.Tensor:
    """`x` (normalized) padded by one pixel as the training crop pads: with `black` (the
    normalized value of black, (1, C, 1, 1)), or mirroring the edge when it is None."""
    if black is None:
        return F.pad(x, (1, 1, 1, 1), mode="reflect")
    return F.pad(x - black, (1, 1, 1, 1)) + black


def _view(x: torch.Tensor, padded: torch.Tensor | None, dx: int, dy: int, mirrored: bool
          ) -> torch.Tensor:
    """`x` with its content moved by (dx, dy) pixels (cut from `padded`, `_padded(x)`), then
    mirrored."""
    if dx or dy:
        h, w = x.shape[-2:]
        x = padded[..., 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]
    return x.flip(-1) if mirrored else x


def _log_probs(model: torch.nn.Module, x: torch.Tensor, tta: str, black: torch.Tensor | None,
               precision: str) -> torch.Tensor:
    """Log of the model's softmax, averaged over the test-time views `TTA_VIEWS[tta]` (a view
    listed k times weighs k); shifted views fill their edge as `_padded` does."""
    views = Counter(TTA_VIEWS[tta])
    layout = (torch.channels_last if x.is_contiguous(memory_format=torch.channels_last)
              else torch.contiguous_format)  # the views keep the model's memory format
    # padded once per batch: every shifted view is a window of it
    padded = _padded(x, black) if any(dx or dy for dx, dy, _ in views) else None
    total = None
    for (dx, dy, mirrored), count in views.items():
        v = _view(x, padded, dx, dy, mirrored).contiguous(memory_format=layout)
        with autocast(x.device, precision):
            log_p = model(v).float().log_softmax(1) + math.log(count)
        total = log_p if total is None else torch.logaddexp(total, log_p)
    return total - math.log(views.total())


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: DeviceData, batch_size: int,
             tta: str = "none", precision: str = "auto") -> EvalResult:
    """Evaluate `model` (switched to eval mode, then restored) over all of `data`; `tta` names
    the test-time views averaged per image (`dlab.config.TTA_VIEWS`), `precision` the
    arithmetic (`autocast`)."""
    keep_freed_memory()
    was_training = model.training
    model.eval()
    # shifted views' edge: black, normalized (1, C, 1, 1), or mirrored (None)
    black = None if data.shift_fill == "reflect" else -data.mean / data.std
    loss_sum = torch.zeros((), device=data.device)
    preds, confs = [], []
    for x, y in data.batches(batch_size):
        log_p = _log_probs(model, x, tta, black, precision)
        loss_sum += F.nll_loss(log_p, y, reduction="sum")
        prob, pred = log_p.exp().max(1)
        preds.append(pred)
        confs.append(prob)
    model.train(was_training)
    pred = torch.cat(preds)
    correct = (pred == data.labels).sum()
    n = len(data)
    return EvalResult(loss=float(loss_sum) / n, acc=float(correct) / n, n=n,
                      predictions=pred.cpu().numpy(), confidence=torch.cat(confs).cpu().numpy())


def checkpoint_test_data(cfg, meta: dict, dataset: str, data_dir, device: torch.device
                         ) -> DeviceData:
    """`dataset`'s test split, preprocessed as the checkpoint's run was; a shape the model
    cannot take is a one-line error."""
    from dlab.data import load_dataset

    ds = load_dataset(dataset, "test", data_dir)
    if tuple(ds.images.shape[1:]) != tuple(meta["in_shape"]):
        raise DlabError(f"dataset {dataset!r} has images of shape {tuple(ds.images.shape[1:])}; "
                        f"the model expects {tuple(meta['in_shape'])}")
    return DeviceData(ds, cfg.data, device)


def evaluate_checkpoint(checkpoint_path: str | os.PathLike, dataset: str, *, data_dir=None,
                        device: str = "auto", batch_size: int | None = None) -> dict:
    """Evaluate a saved model, unchanged (same preprocessing and test-time augmentation), on
    `dataset`'s test split; `batch_size` defaults to the run's train.eval_batch_size."""
    from dlab.config import validate
    from dlab.torch_engine.checkpoint import load_checkpoint

    dev = resolve_device(device)
    model, cfg, meta = load_checkpoint(checkpoint_path, dev)
    validate(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, dataset=dataset)))
    result = evaluate(model, checkpoint_test_data(cfg, meta, dataset, data_dir, dev),
                      batch_size or cfg.train.eval_batch_size, tta=cfg.train.tta,
                      precision=cfg.train.precision)
    return {"dataset": dataset, "val_acc": result.acc, "val_loss": result.loss, "n": result.n,
            "tta": cfg.train.tta, "checkpoint": str(checkpoint_path)}
