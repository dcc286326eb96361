"""TensorBoard as the original assignment used it, as trainer callbacks: parameter and gradient
histograms every N optimizer steps, and an embedding projector of validation images.

Both are off by default (`train.tb_histograms_every = 0`, `train.tb_projector = false`): a
histogram pass copies every parameter and gradient to the host, and the projector writes
thumbnails and features once at the end; BENCHMARKS.md ("TensorBoard extras") gives their cost.
"""

from __future__ import annotations

from typing import Any

import torch

from dlab.tasks.base import Callback, FitState

PROJECTOR_IMAGES = 100


class Histograms(Callback):
    """`param/<name>` and `grad/<name>` histograms of every model every `every` steps."""

    def __init__(self, writer: Any, models: dict[str, torch.nn.Module], every: int):
        self.writer, self.models, self.every_steps = writer, models, every

    def on_step(self, run: FitState, step: int) -> None:
        for model_name, model in self.models.items():
            prefix = "" if model_name == "model" else f"{model_name}/"
            for name, p in model.named_parameters():
                self.writer.add_histogram(f"param/{prefix}{name}", p.detach().float().cpu(), step)
                if p.grad is not None:
                    self.writer.add_histogram(f"grad/{prefix}{name}",
                                              p.grad.detach().float().cpu(), step)


class Projector(Callback):
    """At the end of the run: the penultimate features of the first 100 validation images, with
    their labels and thumbnails, for TensorBoard's embedding projector."""

    def __init__(self, writer: Any):
        self.writer = writer

    def on_fit_end(self, run: FitState, result: dict[str, Any]) -> None:
        s = run.session
        model = s.models["model"]
        last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        captured: list[torch.Tensor] = []
        hook = last.register_forward_hook(lambda mod, inp, out: captured.append(inp[0]))
        images = s.val.images[:PROJECTOR_IMAGES]
        labels = s.val.labels[:PROJECTOR_IMAGES].cpu().tolist()
        model.eval()
        try:
            with torch.no_grad():
                model(s.val.prepare(images))
        finally:
            hook.remove()
        features = captured[0].flatten(1).float().cpu()
        thumbs = images.float().cpu() / 255.0
        self.writer.add_embedding(features, metadata=[s.val.classes[y] for y in labels],
                                  label_img=thumbs, global_step=run.epoch, tag="validation")
        self.writer.flush()


def tensorboard_extras(cfg: Any, session: Any, writer: Any) -> list[Callback]:
    """The callbacks `cfg.train` asks for (none for configs without these settings)."""
    train = getattr(cfg, "train", None)
    out: list[Callback] = []
    every = getattr(train, "tb_histograms_every", 0)
    if every:
        out.append(Histograms(writer, session.models, every))
    if getattr(train, "tb_projector", False) and hasattr(session, "val"):
        out.append(Projector(writer))
    return out
