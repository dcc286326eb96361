"""The GAN task's session: G and D (and an EMA of G), their optimizers, data on the device.

What `dlab.torch_engine.trainer` drives for task "gan" (`dlab.tasks.gan`). One `step` is one
discriminator/critic update; every `n_critic`-th step also updates G (the step counter is
session state, checkpointed through `extra_state`, so a resumed run keeps its phase). The
training split stays on the device as uint8 and is scaled to [-1, 1] per batch (a quarter of
the memory of a float copy); batches are drawn with the session's `generator`, the last
incomplete one dropped (every D batch the same size, as batch norm wants). Step outputs are
sums over the batch: `d_loss`, `g_loss` (times `n_critic`: its epoch mean is the mean over G
steps), for WGANs `wasserstein` (the critic's estimate E D(x) − E D(G(z))) and `gp`, for ACGAN
`d_class_acc`. Evaluation (G, or its EMA, in eval mode): FD-dlab / KID-dlab / coverage of
`eval.n_epoch` samples after every epoch, of `eval.n_samples` at the end, always from the same
noise (a generator seeded by `train.seed`, apart from training's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from dlab.data import balanced_subset, load_dataset
from dlab.errors import DlabError
from dlab.generative import losses
from dlab.generative.config import GanConfig, image_shape
from dlab.generative.extractor import get_extractor
from dlab.generative.metrics import real_reference, score_images
from dlab.generative.models import EMA, Discriminator, Generator, init_weights
from dlab.generative.sampling import intended_labels, sample, save_grid
from dlab.tasks.base import OpenContext
from dlab.torch_engine import checkpoint as ckpt
from dlab.torch_engine.evaluate import autocast, warn_slow_bf16

EVAL_SEED_OFFSET = 1_000_003  # evaluation noise: seed + this, never training's stream
GRID_SEED_OFFSET = 7_919


def build_networks(cfg: GanConfig, num_classes: int) -> tuple[Generator, Discriminator]:
    c, size, _ = image_shape(cfg)
    m = cfg.model
    k = num_classes if m.kind == "acgan" else 0
    g = Generator(m.noise_dim, m.g_width, c, size, k, m.embed_dim, m.embed_mode)
    d = Discriminator(m.d_width, c, size, bool(m.d_batch_norm), k)
    init_weights(g), init_weights(d)
    return g, d


def _optimizer(cfg: GanConfig, params) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=o.lr)
    return torch.optim.Adam(params, lr=o.lr, betas=tuple(o.betas))


class GanSession:
    """One GAN run's networks, optimizers, device-resident data and evaluation."""

    eval_keys = ("fd_dlab", "kid_dlab", "kid_dlab_std", "fd_dlab_floor", "kid_dlab_floor",
                 "eval_n", "classes_covered", "kl_uniform")

    def __init__(self, cfg: GanConfig, ctx: OpenContext):
        self.cfg, self.device, self.run_dir = cfg, ctx.device, Path(ctx.run_dir)
        m, t, dev = cfg.model, cfg.train, ctx.device
        full = load_dataset(cfg.data.dataset, "train", ctx.data_dir)
        test = load_dataset(cfg.data.dataset, "test", ctx.data_dir)
        train = full if not cfg.data.train_limit else full.subset(
            balanced_subset(full.labels, cfg.data.train_limit, cfg.data.split_seed))
        self.classes = train.classes
        self.acgan = m.kind == "acgan"
        if self.acgan and len(np.unique(train.labels)) < 2:
            raise DlabError(f"model.kind = 'acgan' needs class labels; dataset "
                            f"{cfg.data.dataset!r} has {len(np.unique(train.labels))} class")
        self.steps_per_epoch = len(train) // t.batch_size
        if self.steps_per_epoch < 1:
            raise DlabError(f"train.batch_size = {t.batch_size} is larger than the {len(train)} "
                            "training images")
        self.images = torch.from_numpy(train.images.copy()).to(dev)
        self.labels = torch.from_numpy(train.labels.copy()).to(dev)
        self.shape = image_shape(cfg)
        k = len(self.classes)
        g, d = build_networks(cfg, k)
        # channels_last: oneDNN's convolutions run 10-30% faster on it at these sizes (CPU,
        # bench/bench_gan_epoch.py); batches are laid out to match in `_scale`
        self.g = g.to(dev, memory_format=torch.channels_last)
        self.d = d.to(dev, memory_format=torch.channels_last)
        warn_slow_bf16(dev, t.precision)
        self.ema = EMA(self.g, t.ema_decay) if t.ema_decay > 0 else None
        self.models = {"generator": self.g, "discriminator": self.d}
        if self.ema is not None:
            self.models["ema"] = self.ema.module
        self.optimizers = {"generator": _optimizer(cfg, self.g.parameters()),
                           "discriminator": _optimizer(cfg, self.d.parameters())}
        self.schedulers: dict[str, Any] = {}
        self.generator = torch.Generator(device=dev).manual_seed(t.seed)
        grid_rng = torch.Generator(device=dev).manual_seed(t.seed + GRID_SEED_OFFSET)
        self.fixed_noise = torch.randn(t.grid, m.noise_dim, generator=grid_rng, device=dev)
        self.step_count = 0
        self.params = sum(p.numel() for p in (*self.g.parameters(), *self.d.parameters()))
        wgan = m.kind in ("wgan", "wgan-gp")
        self.loss_keys = ("d_loss", "g_loss")
        self.eval_keys = GanSession.eval_keys + (("label_acc",) if self.acgan else ())
        self.wgan = wgan
        e = cfg.eval
        self.extractor = get_extractor(cfg.data.dataset, e.extractor_epochs,
                                       e.extractor_train_limit, ctx.data_dir, dev)
        if e.test_limit:
            test = test.subset(balanced_subset(test.labels, e.test_limit, 0))
        self.ref = real_reference(self.extractor, full.images, test.images,
                                  max(e.n_samples, e.n_epoch), k, e.batch_size,
                                  f"test-{e.test_limit}" if e.test_limit else "test")

    # the loop ------------------------------------------------------------------------------
    def _scale(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float().div_(127.5).sub_(1.0)
        size = self.shape[1]
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return x.contiguous(memory_format=torch.channels_last)

    def batches(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        b = self.cfg.train.batch_size
        order = torch.randperm(len(self.labels), generator=self.generator,
                               device=self.generator.device).to(self.device)
        for i in range(self.steps_per_epoch):
            idx = order[i * b:(i + 1) * b]
            yield self._scale(self.images[idx]), self.labels[idx]

    def _noise(self, b: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = torch.randn(b, self.cfg.model.noise_dim, generator=self.generator,
                        device=self.device)
        c = (torch.randint(len(self.classes), (b,), generator=self.generator,
                           device=self.device) if self.acgan else None)
        return z, c

    def step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, Any]:
        x, y = batch
        b, o = len(x), self.cfg.optim
        z, c = self._noise(b)
        if o.n_critic == 1:  # one G pass serves both updates (as pytorch/examples' DCGAN)
            with self._autocast():
                fake = self.g(z, c)
            out = {"n": b, **self._d_step(x, y, fake.detach(), c)}
            self.step_count += 1
            out.update(self._g_step(b, fake, c))
            return out
        with torch.no_grad(), self._autocast():
            fake = self.g(z, c)
        out = {"n": b, **self._d_step(x, y, fake, c)}
        self.step_count += 1
        if self.step_count % o.n_critic == 0:
            z, c = self._noise(b)
            with self._autocast():
                fake = self.g(z, c)
            out.update(self._g_step(b, fake, c))
        return out

    def _autocast(self):
        return autocast(self.device, self.cfg.train.precision)

    def _d(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """D's outputs for `x`, float32 whatever the precision of its forward pass."""
        with self._autocast():
            out, cls = self.d(x)
        return out.float(), None if cls is None else cls.float()

    def _d_step(self, x: torch.Tensor, y: torch.Tensor, fake: torch.Tensor,
                c: torch.Tensor | None) -> dict[str, torch.Tensor]:
        o, b = self.cfg.optim, len(x)
        real_out, real_cls = self._d(x)
        fake_out, fake_cls = self._d(fake)
        stats: dict[str, torch.Tensor] = {}
        if self.wgan:
            loss = losses.wasserstein_d(real_out, fake_out)
            stats["wasserstein"] = -loss.detach() * b
            if o.gp_lambda > 0:
                gp = losses.gradient_penalty(self.d, x, fake.float(), self.generator)
                loss = loss + o.gp_lambda * gp
                stats["gp"] = gp.detach() * b
        else:
            loss = losses.bce_d(real_out, fake_out)
        if self.acgan:
            loss = loss + losses.class_loss(real_cls, y)
            if o.fake_class_weight > 0:
                loss = loss + o.fake_class_weight * losses.class_loss(fake_cls, c)
            stats["d_class_acc"] = (real_cls.detach().argmax(1) == y).sum()
        opt = self.optimizers["discriminator"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if o.clip > 0:
            with torch.no_grad():
                for p in self.d.parameters():
                    p.clamp_(-o.clip, o.clip)
        return {"d_loss": loss.detach() * b, **stats}

    def _g_step(self, b: int, fake: torch.Tensor, c: torch.Tensor | None
                ) -> dict[str, torch.Tensor]:
        self.d.requires_grad_(False)  # no D weight gradients in G's backward pass
        try:
            fake_out, fake_cls = self._d(fake)
            loss = losses.wasserstein_g(fake_out) if self.wgan else losses.bce_g(fake_out)
            if self.acgan:
                loss = loss + self.cfg.optim.g_class_weight * losses.class_loss(fake_cls, c)
            opt = self.optimizers["generator"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        finally:
            self.d.requires_grad_(True)
        if self.ema is not None:
            self.ema.update(self.g)
        return {"g_loss": loss.detach() * b * self.cfg.optim.n_critic}

    # evaluation ----------------------------------------------------------------------------
    @property
    def eval_generator(self) -> Generator:
        """The generator that samples and is scored: the EMA when `train.ema_decay` > 0."""
        return self.ema.module if self.ema is not None else self.g

    def score(self, n: int) -> dict[str, float]:
        e, k = self.cfg.eval, len(self.classes)
        rng = torch.Generator(device=self.device).manual_seed(self.cfg.train.seed
                                                               + EVAL_SEED_OFFSET)
        images = sample(self.eval_generator, n, self.cfg.model.noise_dim, self.device, rng,
                        k if self.acgan else 0, e.batch_size)
        return score_images(images, self.ref, e.kid_subsets, e.kid_subset_size,
                            intended_labels(n, k) if self.acgan else None, e.batch_size)

    def evaluate(self) -> dict[str, float | None]:
        if self.cfg.eval.n_epoch == 0:
            return {k: None for k in self.eval_keys}
        return self.score(self.cfg.eval.n_epoch)

    def final_evaluate(self) -> dict[str, float | None]:
        return self.score(self.cfg.eval.n_samples)

    def lr(self) -> float:
        return self.optimizers["generator"].param_groups[0]["lr"]

    # checkpoints ---------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {"in_shape": list(self.shape), "num_classes": len(self.classes),
                "classes": list(self.classes), "kind": self.cfg.model.kind}

    def extra_state(self) -> dict[str, torch.Tensor]:
        return {"fixed_noise": self.fixed_noise,
                "step_count": torch.tensor([self.step_count], dtype=torch.int64)}

    def load_extra_state(self, tensors: dict[str, torch.Tensor]) -> None:
        self.fixed_noise = tensors["fixed_noise"].to(self.device)
        self.step_count = int(tensors["step_count"][0])

    def init_from(self, path: str) -> None:
        _, tensors = ckpt.read_checkpoint(path)
        try:
            for name in ("generator", "discriminator"):
                self.models[name].load_state_dict(ckpt.model_state(tensors, name))
            if self.ema is not None:
                self.ema.module.load_state_dict(self.g.state_dict())
        except RuntimeError:
            raise DlabError(f"train.init_from {path!r}: its weights do not fit this GAN "
                            "(model.kind, widths, noise_dim and image size must match)") from None

    def info(self) -> dict[str, Any]:
        x = self.extractor
        return {"device": self.device.type, "extractor_key": x.key,
                "extractor_test_acc": x.test_acc, "eval_n_epoch": self.cfg.eval.n_epoch,
                "eval_n_final": self.cfg.eval.n_samples, "eval_reference": "test split",
                "eval_generator": "ema" if self.ema is not None else "generator",
                "generator_mode": "eval", "metric_names": "FD-dlab / KID-dlab (not FID)"}

    # artifacts -----------------------------------------------------------------------------
    def first_images(self) -> np.ndarray:
        return self.images[:64].cpu().numpy()

    @torch.no_grad()
    def fixed_samples(self) -> torch.Tensor:
        g = self.eval_generator
        was = g.training
        g.eval()
        try:
            labels = (torch.arange(len(self.fixed_noise), device=self.device) % len(self.classes)
                      if self.acgan else None)
            return g(self.fixed_noise, labels).float()
        finally:
            g.train(was)

    def epoch_end(self, epoch: int, tb: Any) -> None:
        grid = save_grid(self.fixed_samples(), self.run_dir / "samples" / f"epoch-{epoch:03d}.png")
        tb.writer.add_image("samples/fixed_noise", grid, epoch, dataformats="HWC")

    def figures(self, run_dir: Path, rows: list[dict[str, Any]], tb: Any, epoch: int) -> None:
        from dlab.generative.sampling import plot_gan_curves

        if not rows:
            return
        cfg = self.cfg
        png = plot_gan_curves(rows, run_dir / "curves.png",
                              title=f"{cfg.data.dataset} · {cfg.model.kind}")
        tb.figure_png("curves", png, epoch)
