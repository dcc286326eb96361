"""The classification task's session: data on the device, one model, one optimizer.

What `dlab.torch_engine.trainer` drives for task "classification" (`dlab.tasks.classification`):
a step is one SGD/Adam/… update with cross-entropy (label smoothing optional) under autocast;
the epoch's evaluation is single-view, the final one uses `train.tta`.

Options off by default (GaTech HW2's deliverables):
- `train.eval_every = K > 0`: every step's training loss goes into a tensor preallocated on the
  device (no host sync per step), and every K steps the validation set is evaluated; both are
  session state, so they survive a resume, and end in `steps.jsonl`.
- validation = "holdout": after the last epoch the test set is evaluated too (`test_acc`,
  `test_loss` in the final metrics), with `train.tta`.
- `train.deliverables = PREFIX`: the course's files in the run directory (`_deliverables`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from dlab.config import RunConfig
from dlab.data import balanced_subset, load_dataset, load_splits
from dlab.errors import DlabError
from dlab.models import get_model
from dlab.tasks.base import OpenContext
from dlab.torch_engine import checkpoint as ckpt
from dlab.torch_engine.batches import DeviceData
from dlab.torch_engine.evaluate import EvalResult, autocast, evaluate, warn_slow_bf16
from dlab.torch_engine.fused import fuse
from dlab.torch_engine.lookahead import Lookahead
from dlab.torch_engine.models import build_model, count_params
from dlab.torch_engine.optim import build_optimizer, build_scheduler, param_groups


DATA_INIT_IMAGES = 5000  # the training images a model's `data_init` sees (whitening statistics)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def load_test_split(cfg: RunConfig, data_dir, device: torch.device, channels_last: bool
                    ) -> tuple[DeviceData, np.ndarray]:
    """The test set (its first `data.val_limit`, class-balanced, when set) and the images'
    ids: their indices in the test set."""
    ds = load_dataset(cfg.data.dataset, "test", data_dir)
    ids = np.arange(len(ds))
    if cfg.data.val_limit:
        ids = balanced_subset(ds.labels, cfg.data.val_limit, cfg.data.split_seed)
        ds = ds.subset(ids, split="test")
    return DeviceData(ds, cfg.data, device, channels_last), ids


class ClassifierSession:
    """One classifier run's model, optimizer, schedule and device-resident data."""

    loss_keys = ("loss",)
    eval_keys = ("val_loss", "val_acc")

    def __init__(self, cfg: RunConfig, ctx: OpenContext):
        self.cfg, self.device = cfg, ctx.device
        warn_slow_bf16(ctx.device, cfg.train.precision)
        train_ds, val_ds = load_splits(cfg.data, ctx.data_dir)
        channels_last = get_model(cfg.model.name).channels_last
        self.train = DeviceData(train_ds, cfg.data, self.device, channels_last)
        self.train.set_augmentation(cfg.data.augment, cfg.train.seed)
        self.val = DeviceData(val_ds, cfg.data, self.device, channels_last)
        model = build_model(cfg.model, self.train.shape, len(self.train.classes)).to(self.device)
        if hasattr(model, "data_init"):  # e.g. airnet's patch-whitening filters
            model.data_init(self.train.prepare(self.train.images[:DATA_INIT_IMAGES]))
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.fused = fuse(model, self.device)
        self.model = model
        optimizer = build_optimizer(cfg.optim, param_groups(model, cfg.optim))
        self.steps_per_epoch = math.ceil(len(self.train) / cfg.train.batch_size)
        scheduler = build_scheduler(optimizer, cfg.optim, self.steps_per_epoch, cfg.train.epochs)
        self.models = {ckpt.MAIN: model}
        self.optimizers = {ckpt.MAIN: optimizer}
        self.schedulers = {ckpt.MAIN: scheduler}
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.train.seed)
        self.lookahead = (Lookahead(model, cfg.optim.lookahead,
                                    self.steps_per_epoch * cfg.train.epochs)
                          if cfg.optim.lookahead else None)
        self.params = count_params(model)
        self.last: EvalResult | None = None
        self.final: EvalResult | None = None
        self.test, self.test_ids, self.test_result = None, None, None
        if cfg.data.validation == "holdout":
            self.test, self.test_ids = load_test_split(cfg, ctx.data_dir, self.device,
                                                       channels_last)
        self.eval_every = cfg.train.eval_every
        if self.eval_every:
            total = self.steps_per_epoch * cfg.train.epochs
            self.step_index = 0
            self.step_losses = torch.full((total,), math.nan, device=self.device)
            # (val_loss, val_acc) after steps K, 2K, ...
            self.step_evals = torch.full((total // self.eval_every, 2), math.nan,
                                         device=self.device)

    # the loop ------------------------------------------------------------------------------
    def batches(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if hasattr(self.model, "start_epoch"):  # e.g. airnet's whitening bias, trained a while
            self.model.start_epoch(epoch)
        return self.train.batches(self.cfg.train.batch_size, self.generator, epoch)

    def step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, Any]:
        x, y = batch
        optimizer = self.optimizers[ckpt.MAIN]
        with autocast(self.device, self.cfg.train.precision):
            logits = self.model(x)
            loss = F.cross_entropy(logits.float(), y,
                                   label_smoothing=self.cfg.train.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        optimizer.step()
        if self.lookahead is not None:
            self.lookahead.after_step()
        if self.eval_every:
            self._record_step(loss.detach())
        return {"n": len(y), "loss": loss.detach() * len(y),
                "acc": (logits.detach().argmax(1) == y).sum()}

    def _record_step(self, loss: torch.Tensor) -> None:
        """Store the step's loss on the device; every `eval_every` steps, evaluate (a log
        point: the one host sync in between)."""
        i = self.step_index
        if i < len(self.step_losses):
            self.step_losses[i] = loss
        self.step_index = i = i + 1
        if i % self.eval_every == 0 and i // self.eval_every <= len(self.step_evals):
            r = self._evaluate(self.val)
            self.step_evals[i // self.eval_every - 1, 0] = r.loss
            self.step_evals[i // self.eval_every - 1, 1] = r.acc

    def _evaluate(self, data: DeviceData, tta: str = "none") -> EvalResult:
        t = self.cfg.train
        return evaluate(self.model, data, t.eval_batch_size, tta=tta, precision=t.precision)

    def evaluate(self) -> dict[str, float | None]:
        self.last = self._evaluate(self.val)
        self.final = self.last
        return {"val_loss": _finite(self.last.loss), "val_acc": self.last.acc}

    def final_evaluate(self) -> dict[str, float | None] | None:
        """With test-time augmentation (`train.tta`), or after resuming a run whose last epoch
        was done; None when the last epoch's single-view evaluation is the final one."""
        single = None if self.last is None else self.last.acc
        if self.last is not None and self.cfg.train.tta == "none":
            out = None
        else:
            self.final = self._evaluate(self.val, self.cfg.train.tta)
            out = {"val_loss": _finite(self.final.loss), "val_acc": self.final.acc}
            if single is not None:
                out["single_view_val_acc"] = single
        if self.test is None:
            return out
        self.test_result = self._evaluate(self.test, self.cfg.train.tta)
        if out is None:  # the last epoch's evaluation, unchanged, plus the test set's
            out = {"val_loss": _finite(self.last.loss), "val_acc": self.last.acc}
        out.update(test_loss=_finite(self.test_result.loss), test_acc=self.test_result.acc)
        return out

    def lr(self) -> float:
        return self.optimizers[ckpt.MAIN].param_groups[0]["lr"]

    # checkpoints ---------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {"in_shape": list(self.train.shape), "num_classes": len(self.train.classes),
                "classes": list(self.train.classes)}

    def extra_state(self) -> dict[str, torch.Tensor]:
        out = {} if self.lookahead is None else self.lookahead.state()
        if self.eval_every:
            out.update(step_index=torch.tensor([self.step_index]),
                       step_losses=self.step_losses.cpu(), step_evals=self.step_evals.cpu())
        return out

    def load_extra_state(self, tensors: dict[str, torch.Tensor]) -> None:
        if self.lookahead is not None:
            self.lookahead.load_state(tensors)
        if self.eval_every and "step_index" in tensors:
            self.step_index = int(tensors["step_index"][0])
            self.step_losses.copy_(tensors["step_losses"])
            self.step_evals.copy_(tensors["step_evals"])

    def init_from(self, path: str) -> None:
        _, tensors = ckpt.read_checkpoint(path)
        try:
            self.model.load_state_dict(ckpt.model_state(tensors))
        except RuntimeError:
            raise DlabError(f"train.init_from {path!r}: its weights do not fit model "
                            f"{self.cfg.model.name!r} with these settings (the model config must "
                            "match the checkpoint's)") from None

    def info(self) -> dict[str, Any]:
        return {"device": self.device.type, "fused_conv_pool_relu": self.fused}

    # artifacts -----------------------------------------------------------------------------
    def first_images(self) -> np.ndarray:
        return self.train.images[:64].cpu().numpy()

    def epoch_end(self, epoch: int, tb: Any) -> None:
        pass

    def figures(self, run_dir: Path, rows: list[dict[str, Any]], tb: Any, epoch: int) -> None:
        from dlab import figures
        from dlab.torch_engine.models import first_conv_or_linear

        cfg, final = self.cfg, self.final
        pngs = {"curves": figures.plot_curves(rows, run_dir / "curves.png",
                                              title=f"{cfg.data.dataset} · {cfg.model.name}")}
        layer = first_conv_or_linear(self.model)
        if layer is not None:
            pngs["filters"] = figures.plot_filters(layer.weight.detach().float().cpu().numpy(),
                                                   run_dir / "filters.png",
                                                   image_shape=self.train.shape)
        if final is not None:
            y_true = self.val.labels.cpu().numpy()
            np.savez_compressed(run_dir / "predictions.npz", labels=y_true,
                                predictions=final.predictions, confidence=final.confidence)
            cm = figures.confusion_matrix(y_true, final.predictions, len(self.val.classes))
            pngs["confusion"] = figures.plot_confusion(cm, self.val.classes,
                                                       run_dir / "confusion.png")
            idx = figures.most_confident_mistakes(y_true, final.predictions, final.confidence)
            if len(idx):
                names = self.val.classes
                titles = [f"{names[final.predictions[i]]} ({100 * final.confidence[i]:.0f}%)\n"
                          f"true: {names[y_true[i]]}" for i in idx]
                pngs["mistakes"] = figures.plot_image_grid(
                    self.val.images[torch.as_tensor(idx, device=self.device)].cpu().numpy(),
                    titles, run_dir / "mistakes.png",
                    title="most confident mistakes (predicted, true)")
        if self.eval_every:
            pngs.update(self._iteration_files(run_dir, tb))
        for tag, png in pngs.items():
            tb.figure_png(tag, png, epoch)

    # iteration curves and the course's files ------------------------------------------------
    def _iteration_files(self, run_dir: Path, tb: Any) -> dict[str, Path]:
        """steps.jsonl (every step's loss; val_loss/val_acc every eval_every steps), their
        TensorBoard scalars and, with `train.deliverables`, the course's files."""
        from dlab.runs import write_jsonl

        done = min(self.step_index, len(self.step_losses))
        losses = self.step_losses[:done].tolist()
        evals = self.step_evals[:done // self.eval_every].tolist()
        rows = [{"step": i + 1, "loss": _finite(v)} for i, v in enumerate(losses)]
        for k, (val_loss, val_acc) in enumerate(evals):
            rows[(k + 1) * self.eval_every - 1].update(val_loss=_finite(val_loss), val_acc=val_acc)
        write_jsonl(run_dir / "steps.jsonl", rows)
        for row in rows:
            for key in ("loss", "val_loss", "val_acc"):
                if row.get(key) is not None:
                    tb.writer.add_scalar(f"step/{key}", row[key], row["step"])
        if not self.cfg.train.deliverables:
            return {}
        return _deliverables(self, run_dir, rows)


def _deliverables(s: ClassifierSession, run_dir: Path, rows: list[dict[str, Any]]
                  ) -> dict[str, Path]:
    """The course's files, named by `train.deliverables` (PREFIX): PREFIX_lossvstrain.png
    (training and validation loss against iterations), PREFIX_valaccuracy.png (validation
    accuracy against iterations), PREFIX_gridfilt.png (the first layer's filters), PREFIX.log
    (whose last line is the test accuracy) and predictions.csv (`image_id,label`, the test set
    as `dlab predict` writes it)."""
    import csv
    import io

    import matplotlib.pyplot as plt

    from dlab import figures
    from dlab.io import atomic_write_bytes
    from dlab.torch_engine.models import first_conv_or_linear

    cfg, prefix = s.cfg, s.cfg.train.deliverables
    val_name = ("validation (test set)" if cfg.data.validation == "test"
                else f"validation ({len(s.val)}-image hold-out)")
    evals = [r for r in rows if "val_acc" in r]
    pngs: dict[str, Path] = {}
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=0.6, alpha=0.7,
            label="training loss (each iteration's batch)")
    ax.plot([r["step"] for r in evals], [r["val_loss"] for r in evals], "o-", ms=3,
            label=f"{val_name} loss")
    ax.set(xlabel="iteration", ylabel="cross-entropy loss",
           title=f"{prefix}: loss against iterations")
    ax.legend()
    pngs[f"{prefix}_lossvstrain"] = _save_png(fig, run_dir / f"{prefix}_lossvstrain.png")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([r["step"] for r in evals], [100 * r["val_acc"] for r in evals], "o-", ms=3)
    ax.set(xlabel="iteration", ylabel=f"{val_name} accuracy %",
           title=f"{prefix}: validation accuracy against iterations")
    pngs[f"{prefix}_valaccuracy"] = _save_png(fig, run_dir / f"{prefix}_valaccuracy.png")
    layer = first_conv_or_linear(s.model)
    if layer is not None:
        pngs[f"{prefix}_gridfilt"] = figures.plot_filters(
            layer.weight.detach().float().cpu().numpy(), run_dir / f"{prefix}_gridfilt.png",
            title=f"{prefix}: first-layer filters", image_shape=s.train.shape)

    test = s.test_result if s.test is not None else s.final
    ids = s.test_ids if s.test is not None else np.arange(len(s.val))
    lines = [f"# {prefix}: {cfg.data.dataset}, model {cfg.model.name}, {s.params} parameters, "
             f"train {len(s.train)} images, {val_name}"]
    for r in evals:
        recent = [x["loss"] for x in rows[max(0, r["step"] - s.eval_every):r["step"]]
                  if x["loss"] is not None]
        mean = sum(recent) / len(recent) if recent else float("nan")
        lines.append(f"iteration {r['step']}: train loss {mean:.4f} (mean of the last "
                     f"{len(recent)}), val loss {_fmt(r['val_loss'])}, val acc {r['val_acc']:.4f}")
    if s.final is not None:
        lines.append(f"final validation accuracy: {s.final.acc:.4f}")
    if test is not None:
        lines.append(f"test accuracy: {test.acc:.4f} ({len(ids)} test images)")
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(["image_id", "label"])
        writer.writerows(zip(ids.astype(np.int64).tolist(),
                             test.predictions.astype(np.int64).tolist()))
        atomic_write_bytes(run_dir / "predictions.csv", text.getvalue().encode())
    atomic_write_bytes(run_dir / f"{prefix}.log", ("\n".join(lines) + "\n").encode())
    return pngs


def _fmt(value: float | None) -> str:
    return "nan" if value is None else f"{value:.4f}"


def _save_png(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.axes[0].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
