"""The training loop: one run of one `RunConfig` into one run directory, resumable.

`train_run` holds the run directory's lock, resumes from `checkpoints/last` when present, and
writes per epoch a metrics row, TensorBoard scalars, the best and last checkpoints; at the end
the figures and, last and atomically, `result.json`. Losses and accuracies accumulate on the
device; the host syncs once per epoch. A NaN/inf epoch loss ends the run as `diverged`.
Same seed on CPU ⇒ the same metrics, also across a kill and resume (RNG states are saved).
The same resume lets a run continue a finished shorter twin (`RunConfig.continues`): its first
epochs are the twin's, copied, not retrained.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from dlab.allocator import keep_freed_memory
from dlab.config import RunConfig, resolve
from dlab.data import load_splits
from dlab.errors import DlabError
from dlab.runs import (CONFIG, MANIFEST, METRICS, RESULT, append_jsonl, atomic_write_json,
                       manifest, read_json, read_jsonl, read_result, run_lock, truncate_jsonl,
                       write_jsonl)
from dlab.torch_engine import checkpoint as ckpt
from dlab.torch_engine.batches import DeviceData
from dlab.torch_engine.evaluate import EvalResult, autocast, evaluate, resolve_device
from dlab.torch_engine.fused import fuse
from dlab.torch_engine.models import build_model, count_params
from dlab.torch_engine.optim import build_optimizer, build_scheduler
from dlab.torch_engine.sinks import Progress, TensorBoardSink, flat_hparams

EpochHook = Callable[[dict[str, Any]], Any]


@dataclass
class _Session:
    """Everything one run mutates while it trains."""

    cfg: RunConfig
    run_dir: Path
    device: torch.device
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    generator: torch.Generator
    train: DeviceData
    val: DeviceData
    params: int
    fused: int = 0  # conv → pool → relu runs fused into one kernel (dlab.torch_engine.fused)
    epoch: int = 0
    best_val_acc: float = -1.0
    best_epoch: int = 0

    @property
    def ckpt_dir(self) -> Path:
        return self.run_dir / "checkpoints"


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _check_config(run_dir: Path, cfg: RunConfig) -> bool:
    """Whether `run_dir` already holds this config; a different one is an error."""
    path = run_dir / CONFIG
    if not path.exists():
        return False
    if json.loads(path.read_text()) != json.loads(json.dumps(cfg.to_dict())):
        raise DlabError(f"run directory {str(run_dir)!r} holds a run of a different config; "
                        "use a new run directory")
    return True


def _write_config(run_dir: Path, cfg: RunConfig) -> None:
    atomic_write_json(run_dir / CONFIG, cfg.to_dict())
    atomic_write_json(run_dir / MANIFEST, manifest({"config_hash": cfg.hash()}))


def _build_session(cfg: RunConfig, run_dir: Path, device: torch.device, data_dir) -> _Session:
    torch.manual_seed(cfg.train.seed)
    train_ds, val_ds = load_splits(cfg.data, data_dir)
    channels_last = cfg.model.name != "mlp"
    train = DeviceData(train_ds, cfg.data, device, channels_last)
    train.set_augmentation(cfg.data.augment)
    val = DeviceData(val_ds, cfg.data, device, channels_last)
    model = build_model(cfg.model, train.shape, len(train.classes)).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    fused = fuse(model, device)
    optimizer = build_optimizer(cfg.optim, model.parameters())
    steps = math.ceil(len(train) / cfg.train.batch_size)
    scheduler = build_scheduler(optimizer, cfg.optim, steps, cfg.train.epochs)
    generator = torch.Generator(device=device).manual_seed(cfg.train.seed)
    return _Session(cfg, run_dir, device, model, optimizer, scheduler, generator, train, val,
                    count_params(model), fused)


def _rng_tensors(s: _Session) -> dict[str, torch.Tensor]:
    states = {"torch": torch.get_rng_state(), "generator": s.generator.get_state().cpu()}
    if s.device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(s.device)
    return states


def _save(s: _Session, name: str) -> None:
    meta = {"config": s.cfg.to_dict(), "epoch": s.epoch, "in_shape": list(s.train.shape),
            "num_classes": len(s.train.classes), "classes": list(s.train.classes),
            "best_val_acc": s.best_val_acc, "best_epoch": s.best_epoch,
            "scheduler": s.scheduler.state_dict()}
    ckpt.save_checkpoint(s.ckpt_dir, name, model=s.model, meta=meta, optimizer=s.optimizer,
                         extra_tensors=_rng_tensors(s))


def _resume(s: _Session) -> None:
    meta, tensors = ckpt.read_checkpoint(s.ckpt_dir / "last")
    s.model.load_state_dict(ckpt.model_state(tensors))
    s.optimizer.load_state_dict(ckpt.optimizer_state(meta, tensors))
    s.scheduler.load_state_dict(meta["scheduler"])
    rng = ckpt.extra_tensors(tensors)
    torch.set_rng_state(rng["torch"])
    s.generator.set_state(rng["generator"].to(s.generator.device))
    if "cuda" in rng and s.device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], s.device)
    s.epoch, s.best_val_acc, s.best_epoch = meta["epoch"], meta["best_val_acc"], meta["best_epoch"]
    truncate_jsonl(s.run_dir / METRICS, s.epoch)


def _continue(s: _Session, source: Path) -> list[dict[str, Any]]:
    """Start from the end of `source`, a finished shorter twin of this run: copy its history and
    checkpoints, then resume. Returns the copied metrics rows; none (train from scratch) when
    the twin did not finish normally, e.g. diverged."""
    result = read_result(source)
    if result is None or result.get("status") != "finished":
        return []
    if not s.cfg.continues(resolve(read_json(source / CONFIG))):
        raise DlabError(f"run {str(source)!r} is not a shorter run of this config; it cannot be "
                        "continued")
    rows = read_jsonl(source / METRICS)
    write_jsonl(s.run_dir / METRICS, rows)
    for name in ("best", "last"):  # last.json written last: it marks the copy complete
        ckpt.copy_checkpoint(source / "checkpoints" / name, s.ckpt_dir, name)
    _resume(s)
    return rows


def _init_from(s: _Session, path: str) -> None:
    meta, tensors = ckpt.read_checkpoint(path)
    try:
        s.model.load_state_dict(ckpt.model_state(tensors))
    except RuntimeError:
        raise DlabError(f"train.init_from {path!r}: its weights do not fit model "
                        f"{s.cfg.model.name!r} with these settings (the model config must match "
                        "the checkpoint's)") from None


def _train_epoch(s: _Session, progress: Progress) -> tuple[float, float, float]:
    """One pass over the training set: (mean loss, accuracy, seconds)."""
    cfg = s.cfg
    s.model.train()
    loss_sum = torch.zeros((), device=s.device)
    correct = torch.zeros((), device=s.device, dtype=torch.long)
    start = time.perf_counter()
    for i, (x, y) in enumerate(s.train.batches(cfg.train.batch_size, s.generator), 1):
        with autocast(s.device):
            logits = s.model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.train.label_smoothing)
        s.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(s.model.parameters(), cfg.optim.grad_clip)
        s.optimizer.step()
        s.scheduler.step()
        loss_sum += loss.detach() * len(y)
        correct += (logits.detach().argmax(1) == y).sum()
        progress.step(i)
    n = len(s.train)
    loss_mean, acc = float(loss_sum) / n, float(correct) / n  # the epoch's one host sync
    if s.device.type == "cuda":
        torch.cuda.synchronize(s.device)
    return loss_mean, acc, time.perf_counter() - start


def _write_figures(s: _Session, rows: list[dict], final: EvalResult | None,
                   tb: TensorBoardSink) -> None:
    import numpy as np

    from dlab import figures
    from dlab.torch_engine.models import first_conv_or_linear

    pngs = {"curves": figures.plot_curves(rows, s.run_dir / "curves.png",
                                          title=f"{s.cfg.data.dataset} · {s.cfg.model.name}")}
    layer = first_conv_or_linear(s.model)
    if layer is not None:
        pngs["filters"] = figures.plot_filters(layer.weight.detach().float().cpu().numpy(),
                                               s.run_dir / "filters.png",
                                               image_shape=s.train.shape)
    if final is not None:
        y_true = s.val.labels.cpu().numpy()
        np.savez_compressed(s.run_dir / "predictions.npz", labels=y_true,
                            predictions=final.predictions, confidence=final.confidence)
        cm = figures.confusion_matrix(y_true, final.predictions, len(s.val.classes))
        pngs["confusion"] = figures.plot_confusion(cm, s.val.classes, s.run_dir / "confusion.png")
        idx = figures.most_confident_mistakes(y_true, final.predictions, final.confidence)
        if len(idx):
            names = s.val.classes
            titles = [f"{names[final.predictions[i]]} ({100 * final.confidence[i]:.0f}%)\n"
                      f"true: {names[y_true[i]]}" for i in idx]
            pngs["mistakes"] = figures.plot_image_grid(
                s.val.images[torch.as_tensor(idx, device=s.device)].cpu().numpy(), titles,
                s.run_dir / "mistakes.png", title="most confident mistakes (predicted, true)")
    for tag, png in pngs.items():
        tb.figure_png(tag, png, s.epoch)


def train_run(cfg: RunConfig, run_dir: str | Path, *, data_dir=None, device: str = "auto",
              progress: bool = True, on_epoch: EpochHook | None = None,
              continue_from: Path | None = None) -> dict[str, Any]:
    """Train `cfg` into `run_dir` (created if needed), resuming from its last checkpoint.

    Args:
        on_epoch: called with each epoch's metrics row; a truthy return (or optuna's
            TrialPruned) stops the run, which is then recorded with status "pruned".
        continue_from: a finished shorter twin's run directory (`RunConfig.continues`): a new
            run starts where that one ended, exactly as if it had trained those epochs itself.
    Returns:
        The contents of result.json (status, final/best val accuracy, seconds per epoch, …).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    keep_freed_memory()
    with run_lock(run_dir):
        known = _check_config(run_dir, cfg)
        done = read_result(run_dir)
        if done is not None:
            return done
        s = _build_session(cfg, run_dir, resolve_device(device), data_dir)  # bad data fails here
        if not known:
            _write_config(run_dir, cfg)
        resumed = (s.ckpt_dir / "last.json").exists()
        copied: list[dict[str, Any]] = []
        if resumed:
            _resume(s)
        elif continue_from is not None:
            copied = _continue(s, Path(continue_from))
        if not resumed and not copied:
            if (s.run_dir / METRICS).exists():  # an attempt killed before its first checkpoint
                truncate_jsonl(s.run_dir / METRICS, 0)
            if cfg.train.init_from:
                _init_from(s, cfg.train.init_from)
        return _loop(s, progress, on_epoch, resumed, copied)


def _loop(s: _Session, show: bool, on_epoch: EpochHook | None, resumed: bool,
          copied: list[dict[str, Any]]) -> dict[str, Any]:
    cfg = s.cfg
    progress = Progress(show, cfg.train.epochs, math.ceil(len(s.train) / cfg.train.batch_size))
    # events past the checkpoint (or, from scratch, of a killed attempt) are dropped
    tb = TensorBoardSink(s.run_dir / "tb", purge_step=s.epoch + 1)
    if resumed:
        progress.message(f"resuming {s.run_dir} after epoch {s.epoch}")
    else:
        tb.sample_images(s.train.images[:64].cpu().numpy())
    if copied:
        progress.message(f"continuing a finished {s.epoch}-epoch run of this config")
    for row in copied:
        tb.epoch(row)
    status, final = "finished", None
    try:
        while s.epoch < cfg.train.epochs:
            progress.start_epoch(s.epoch + 1)
            lr = s.optimizer.param_groups[0]["lr"]
            loss, acc, seconds = _train_epoch(s, progress)
            s.epoch += 1
            if not math.isfinite(loss):
                status = "diverged"
                row = {"epoch": s.epoch, "loss": None, "acc": acc, "val_loss": None,
                       "val_acc": None, "lr": lr, "time_s": seconds, "params": s.params}
                append_jsonl(s.run_dir / METRICS, row)
                progress.end_epoch(row)
                progress.message(f"loss is {loss} at epoch {s.epoch}: run diverged, stopping")
                break
            final = evaluate(s.model, s.val, cfg.train.eval_batch_size)
            row = {"epoch": s.epoch, "loss": loss, "acc": acc, "val_loss": _finite(final.loss),
                   "val_acc": final.acc, "lr": lr, "time_s": seconds, "params": s.params}
            # the row first: an interrupt before `last` is saved leaves one row too many, which
            # resuming from the previous `last` truncates; the other order would lose a row
            append_jsonl(s.run_dir / METRICS, row)
            if final.acc > s.best_val_acc:
                s.best_val_acc, s.best_epoch = final.acc, s.epoch
                _save(s, "best")
            _save(s, "last")
            tb.epoch(row)
            progress.end_epoch(row)
            if on_epoch is not None and _stop_requested(on_epoch, row):
                status = "pruned"
                break
        if status != "diverged" and (final is None or cfg.train.tta != "none"):
            # the final evaluation: with test-time augmentation, or after resuming a run whose
            # last epoch was done
            progress.message(f"final evaluation (test-time augmentation: {cfg.train.tta})")
            final = evaluate(s.model, s.val, cfg.train.eval_batch_size, tta=cfg.train.tta)
        rows = read_jsonl(s.run_dir / METRICS)
        _write_figures(s, rows, final, tb)
        # a diverged run's final numbers are its last row's (none), not the epoch before's
        result = _result(s, rows, status, final if status != "diverged" else None)
        tb.hparams(flat_hparams(cfg.to_dict()),
                   {"hparam/best_val_acc": result["best_val_acc"] or 0.0,
                    "hparam/final_val_acc": result["final_val_acc"] or 0.0})
    finally:
        tb.close()
    atomic_write_json(s.run_dir / RESULT, result)
    return result


def _stop_requested(on_epoch: EpochHook, row: dict[str, Any]) -> bool:
    from optuna.exceptions import TrialPruned

    try:
        return bool(on_epoch(row))
    except TrialPruned:
        return True


def _result(s: _Session, rows: list[dict], status: str, final: EvalResult | None
            ) -> dict[str, Any]:
    last = dict(rows[-1]) if rows else {}
    if final is not None:  # the final evaluation (test-time augmented when train.tta says so)
        last["val_acc"], last["val_loss"] = final.acc, _finite(final.loss)
    times = [r["time_s"] for r in rows]
    return {
        "status": status,
        "config_hash": s.cfg.hash(),
        "dataset": s.cfg.data.dataset,
        "model": s.cfg.model.name,
        "epochs_completed": len(rows),
        "final_val_acc": last.get("val_acc"),
        "final_val_loss": last.get("val_loss"),
        "best_val_acc": s.best_val_acc if s.best_val_acc >= 0 else None,
        "best_epoch": s.best_epoch,
        "seconds_per_epoch": sum(times) / len(times) if times else None,
        "time_s": sum(times),
        "params": s.params,
        "device": s.device.type,
        "fused_conv_pool_relu": s.fused,
        "tta": s.cfg.train.tta,
        "final_single_view_acc": rows[-1].get("val_acc") if rows else None,
    }
