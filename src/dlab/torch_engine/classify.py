"""The classification task's session: data on the device, one model, one optimizer.

What `dlab.torch_engine.trainer` drives for task "classification" (`dlab.tasks.classification`):
a step is one SGD/Adam/… update with cross-entropy (label smoothing optional) under autocast;
the epoch's evaluation is single-view, the final one uses `train.tta`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from dlab.config import RunConfig
from dlab.data import load_splits
from dlab.errors import DlabError
from dlab.models import get_model
from dlab.tasks.base import OpenContext
from dlab.torch_engine import checkpoint as ckpt
from dlab.torch_engine.batches import DeviceData
from dlab.torch_engine.evaluate import EvalResult, autocast, evaluate
from dlab.torch_engine.fused import fuse
from dlab.torch_engine.models import build_model, count_params
from dlab.torch_engine.optim import build_optimizer, build_scheduler


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


class ClassifierSession:
    """One classifier run's model, optimizer, schedule and device-resident data."""

    loss_keys = ("loss",)
    eval_keys = ("val_loss", "val_acc")

    def __init__(self, cfg: RunConfig, ctx: OpenContext):
        self.cfg, self.device = cfg, ctx.device
        train_ds, val_ds = load_splits(cfg.data, ctx.data_dir)
        channels_last = get_model(cfg.model.name).channels_last
        self.train = DeviceData(train_ds, cfg.data, self.device, channels_last)
        self.train.set_augmentation(cfg.data.augment)
        self.val = DeviceData(val_ds, cfg.data, self.device, channels_last)
        model = build_model(cfg.model, self.train.shape, len(self.train.classes)).to(self.device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.fused = fuse(model, self.device)
        self.model = model
        optimizer = build_optimizer(cfg.optim, model.parameters())
        self.steps_per_epoch = math.ceil(len(self.train) / cfg.train.batch_size)
        scheduler = build_scheduler(optimizer, cfg.optim, self.steps_per_epoch, cfg.train.epochs)
        self.models = {ckpt.MAIN: model}
        self.optimizers = {ckpt.MAIN: optimizer}
        self.schedulers = {ckpt.MAIN: scheduler}
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.train.seed)
        self.params = count_params(model)
        self.last: EvalResult | None = None
        self.final: EvalResult | None = None

    # the loop ------------------------------------------------------------------------------
    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.train.batches(self.cfg.train.batch_size, self.generator)

    def step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, Any]:
        x, y = batch
        optimizer = self.optimizers[ckpt.MAIN]
        with autocast(self.device):
            logits = self.model(x)
            loss = F.cross_entropy(logits.float(), y,
                                   label_smoothing=self.cfg.train.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        optimizer.step()
        return {"n": len(y), "loss": loss.detach() * len(y),
                "acc": (logits.detach().argmax(1) == y).sum()}

    def evaluate(self) -> dict[str, float | None]:
        self.last = evaluate(self.model, self.val, self.cfg.train.eval_batch_size)
        self.final = self.last
        return {"val_loss": _finite(self.last.loss), "val_acc": self.last.acc}

    def final_evaluate(self) -> dict[str, float | None] | None:
        """With test-time augmentation (`train.tta`), or after resuming a run whose last epoch
        was done; None when the last epoch's single-view evaluation is the final one."""
        single = None if self.last is None else self.last.acc
        if self.last is not None and self.cfg.train.tta == "none":
            return None
        self.final = evaluate(self.model, self.val, self.cfg.train.eval_batch_size,
                              tta=self.cfg.train.tta)
        out = {"val_loss": _finite(self.final.loss), "val_acc": self.final.acc}
        if single is not None:
            out["single_view_val_acc"] = single
        return out

    def lr(self) -> float:
        return self.optimizers[ckpt.MAIN].param_groups[0]["lr"]

    # checkpoints ---------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {"in_shape": list(self.train.shape), "num_classes": len(self.train.classes),
                "classes": list(self.train.classes)}

    def extra_state(self) -> dict[str, torch.Tensor]:
        return {}

    def load_extra_state(self, tensors: dict[str, torch.Tensor]) -> None:
        pass

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
        for tag, png in pngs.items():
            tb.figure_png(tag, png, epoch)
