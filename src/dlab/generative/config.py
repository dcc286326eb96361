"""The GAN task's config tree (`GanConfig`): data, model, optim, train, eval; per-kind defaults.

Every hyperparameter is a config value; the defaults are the Clemson HW3 course's. A field whose
default is `None` means "the default of `model.kind`" and is filled in by `resolve` (the table
`KIND_DEFAULTS`): a value the user sets is kept, one left unset takes the kind's. The resolved
config (what config.json holds and what is hashed) has every such value filled in, so setting a
value equal to the kind's default and leaving it unset are the same run.

| kind    | optimizer (lr, betas)        | batch | n_critic | clip | gp λ | BN in D |
|---------|------------------------------|-------|----------|------|------|---------|
| dcgan   | adam (2e-4, 0.5/0.999)       | 128   | 1        | 0    | 0    | yes     |
| wgan    | rmsprop (5e-5)               | 32    | 5        | 0.01 | 0    | yes     |
| wgan-gp | adam (2e-4, 0.5/0.9)         | 32    | 5        | 0    | 10   | no      |
| acgan   | adam (1.5e-4, 0.5/0.999)     | 64    | 1        | 0    | 0    | yes     |

WGAN-GP's betas (0.5, 0.9) follow Gulrajani et al.'s released code; the course states only the
learning rate. Must not import torch (the planner and reports read configs without it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from dlab.config import config_key, from_dict
from dlab.errors import DlabError

KINDS = ("dcgan", "wgan", "wgan-gp", "acgan")
OPTIMIZERS = ("adam", "rmsprop")
EMBED_MODES = ("concat", "multiply")
IMAGE_SIZES = (0, 28, 32, 64)  # 0: the dataset's own size

KIND_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "dcgan": {"optim": {"name": "adam", "lr": 2e-4, "betas": (0.5, 0.999), "n_critic": 1,
                        "clip": 0.0, "gp_lambda": 0.0},
              "model": {"d_batch_norm": True}, "train": {"batch_size": 128}},
    "wgan": {"optim": {"name": "rmsprop", "lr": 5e-5, "betas": (0.5, 0.999), "n_critic": 5,
                       "clip": 0.01, "gp_lambda": 0.0},
             "model": {"d_batch_norm": True}, "train": {"batch_size": 32}},
    "wgan-gp": {"optim": {"name": "adam", "lr": 2e-4, "betas": (0.5, 0.9), "n_critic": 5,
                          "clip": 0.0, "gp_lambda": 10.0},
                "model": {"d_batch_norm": False}, "train": {"batch_size": 32}},
    "acgan": {"optim": {"name": "adam", "lr": 1.5e-4, "betas": (0.5, 0.999), "n_critic": 1,
                        "clip": 0.0, "gp_lambda": 0.0},
              "model": {"d_batch_norm": True}, "train": {"batch_size": 64}},
}


@dataclass(frozen=True)
class GanDataConfig:
    """The training images: the whole split on the device, scaled to [-1, 1]."""

    dataset: str = "cifar10"
    image_size: int = 0  # 0: native (28 MNIST/Fashion, 32 CIFAR-10); 64: bilinear upscale
    train_limit: int = 0  # a class-balanced subset of this many training images (0 = all)
    split_seed: int = 0


@dataclass(frozen=True)
class GanModelConfig:
    """Generator and discriminator/critic (DCGAN-style: strided convs, no FC layers)."""

    kind: str = "dcgan"  # dcgan | wgan | wgan-gp | acgan
    noise_dim: int = 100
    g_width: int = 64  # channels of G's last hidden layer; doubled per upsampling stage inward
    d_width: int = 64  # channels of D's first layer; doubled per stage
    embed_dim: int = 100  # ACGAN: size of G's learned label embedding
    embed_mode: str = "concat"  # ACGAN: "concat" (embedding beside the noise) or "multiply"
    #   (noise * embedding, elementwise, as PyTorch-GAN's ACGAN: embed_dim must equal noise_dim)
    d_batch_norm: bool | None = None  # None: the kind's (off for WGAN-GP: the GP is per sample)


@dataclass(frozen=True)
class GanOptimConfig:
    """One optimizer per network (same settings for both) and the adversarial loss's knobs."""

    name: str | None = None  # adam | rmsprop; None: the kind's
    lr: float | None = None
    betas: tuple[float, float] | None = None  # Adam only
    n_critic: int | None = None  # D/critic updates per G update
    clip: float | None = None  # WGAN: clip critic weights to [-clip, clip] (0 = off)
    gp_lambda: float | None = None  # WGAN-GP: gradient-penalty weight λ (0 = off)
    fake_class_weight: float = 1.0  # ACGAN: weight of D's class loss on generated images (the
    #   original paper's 1; 0: D's classifier learns from real images only, so G cannot agree
    #   with D on a label code of its own that the real classes do not share)
    g_class_weight: float = 1.0  # ACGAN: weight of G's class loss (how hard G draws the label)


@dataclass(frozen=True)
class GanTrainConfig:
    epochs: int = 50
    batch_size: int | None = None  # None: the kind's
    seed: int = 1
    init_from: str = ""  # a GAN checkpoint whose G and D weights start this run
    ema_decay: float = 0.0  # EMA of G's weights used for evaluation and samples (0 = off)
    grid: int = 64  # fixed-noise samples in each epoch's grid
    # "bf16": G's and D's forward passes under bf16 autocast (fast on a CPU with AMX-BF16 or
    # AVX512-BF16, as these machines have; the losses, WGAN-GP's gradient penalty and every
    # evaluation stay float32); "fp32": float32 throughout
    precision: str = "fp32"


@dataclass(frozen=True)
class GanEvalConfig:
    """FD-dlab / KID-dlab and coverage in the features of a dlab classifier of the dataset."""

    n_samples: int = 10000  # generated samples of the final evaluation (vs the test set)
    n_epoch: int = 2000  # generated samples of each epoch's evaluation (0: no per-epoch metric)
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    extractor_epochs: int = 2  # the feature classifier's training (trained once, cached)
    extractor_train_limit: int = 20000  # its training images (class-balanced; 0 = all)
    test_limit: int = 0  # compare with a class-balanced subset of the test set (0 = all 10,000)
    batch_size: int = 500  # generation / feature batch


@dataclass(frozen=True)
class GanConfig:
    """Everything that determines a GAN run's result (the device aside)."""

    data: GanDataConfig = field(default_factory=GanDataConfig)
    model: GanModelConfig = field(default_factory=GanModelConfig)
    optim: GanOptimConfig = field(default_factory=GanOptimConfig)
    train: GanTrainConfig = field(default_factory=GanTrainConfig)
    eval: GanEvalConfig = field(default_factory=GanEvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        return config_key(self, "gan")

    def continues(self, shorter: "GanConfig") -> bool:
        """Whether this run repeats `shorter` step for step and then trains on (no lr schedule:
        a longer run of the same config always does)."""
        return (shorter.train.epochs < self.train.epochs and dataclasses.replace(
            shorter, train=dataclasses.replace(shorter.train, epochs=self.train.epochs)) == self)


def _fill(section: Any, defaults: dict[str, Any]) -> Any:
    unset = {k: v for k, v in defaults.items() if getattr(section, k) is None}
    return dataclasses.replace(section, **unset)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise DlabError(message)


def resolve(data: dict[str, Any] | None = None) -> GanConfig:
    """A validated GanConfig from nested plain data, the kind's defaults filled in."""
    data = dict(data or {})
    data.pop("task", None)  # a study's merged dict may carry its task name
    cfg = from_dict(GanConfig, data)
    kind = cfg.model.kind
    _check(kind in KINDS, f"model.kind = {kind!r}; expected one of: " + ", ".join(KINDS))
    d = KIND_DEFAULTS[kind]
    cfg = dataclasses.replace(cfg, optim=_fill(cfg.optim, d["optim"]),
                              model=_fill(cfg.model, d["model"]),
                              train=_fill(cfg.train, d["train"]))
    validate(cfg)
    return cfg


def validate(cfg: GanConfig) -> None:
    """One-line DlabError naming the first bad value; called before any data loads."""
    from dlab.data.sources import DATASETS

    dt, m, o, t, e = cfg.data, cfg.model, cfg.optim, cfg.train, cfg.eval
    _check(dt.dataset in DATASETS, f"data.dataset = {dt.dataset!r}; expected one of: "
           + ", ".join(DATASETS))
    _check(dt.image_size in IMAGE_SIZES, f"data.image_size = {dt.image_size}; expected 0 "
           "(native), 28, 32 or 64")
    native = DATASETS[dt.dataset].shape[1]
    _check(dt.image_size in (0, native, 64), f"data.image_size = {dt.image_size}: dataset "
           f"{dt.dataset!r} is {native}x{native}; expected 0, {native} or 64 (upscaled)")
    _check(dt.train_limit >= 0, f"data.train_limit = {dt.train_limit}; expected >= 0")
    _check(len(DATASETS[dt.dataset].classes) >= 2 or kind_free(m.kind),
           f"model.kind = 'acgan' needs a labelled dataset; {dt.dataset!r} has no classes")
    for key in ("noise_dim", "g_width", "d_width", "embed_dim"):
        _check(getattr(m, key) >= 1, f"model.{key} = {getattr(m, key)}; expected >= 1")
    _check(m.embed_mode in EMBED_MODES, f"model.embed_mode = {m.embed_mode!r}; expected one "
           "of: " + ", ".join(EMBED_MODES))
    _check(m.embed_mode != "multiply" or m.embed_dim == m.noise_dim,
           f"model.embed_dim = {m.embed_dim} with model.embed_mode = 'multiply'; expected "
           f"model.noise_dim ({m.noise_dim})")
    _check(o.name in OPTIMIZERS, f"optim.name = {o.name!r}; expected one of: "
           + ", ".join(OPTIMIZERS))
    _check(o.lr > 0, f"optim.lr = {o.lr}; expected a learning rate > 0")
    _check(all(0 <= b < 1 for b in o.betas), f"optim.betas = {list(o.betas)}; expected values "
           "in [0, 1)")
    _check(o.n_critic >= 1, f"optim.n_critic = {o.n_critic}; expected >= 1 critic steps per "
           "generator step")
    _check(o.clip >= 0 and (o.clip > 0 or m.kind != "wgan"),
           f"optim.clip = {o.clip}; expected a weight-clipping bound > 0 for kind 'wgan'")
    _check(o.fake_class_weight >= 0, f"optim.fake_class_weight = {o.fake_class_weight}; "
           "expected >= 0")
    _check(o.g_class_weight >= 0, f"optim.g_class_weight = {o.g_class_weight}; expected >= 0")
    _check(o.gp_lambda >= 0, f"optim.gp_lambda = {o.gp_lambda}; expected λ >= 0")
    _check(t.epochs >= 1, f"train.epochs = {t.epochs}; expected >= 1")
    _check(t.batch_size >= 2, f"train.batch_size = {t.batch_size}; expected >= 2")
    _check(0 <= t.ema_decay < 1, f"train.ema_decay = {t.ema_decay}; expected a value in [0, 1) "
           "(0 = off)")
    _check(t.grid >= 1, f"train.grid = {t.grid}; expected >= 1")
    _check(t.precision in ("fp32", "bf16"),
           f"train.precision = {t.precision!r}; expected 'fp32' or 'bf16'")
    _check(e.n_samples >= 2 and e.n_epoch >= 0, f"eval.n_samples = {e.n_samples} / eval.n_epoch"
           f" = {e.n_epoch}; expected >= 2 / >= 0")
    _check(e.kid_subsets >= 1 and e.kid_subset_size >= 2, "eval.kid_subsets >= 1 and "
           "eval.kid_subset_size >= 2 expected")
    _check(e.extractor_epochs >= 1, f"eval.extractor_epochs = {e.extractor_epochs}; expected >= 1")
    _check(e.extractor_train_limit >= 0 and e.test_limit >= 0 and e.batch_size >= 1,
           "eval.extractor_train_limit >= 0, eval.test_limit >= 0 and eval.batch_size >= 1 "
           "expected")


def kind_free(kind: str) -> bool:
    """Whether `kind` trains without labels (every kind but ACGAN)."""
    return kind != "acgan"


def image_shape(cfg: GanConfig) -> tuple[int, int, int]:
    """(C, H, W) of the generated images."""
    from dlab.data.sources import get_spec

    c, h, _ = get_spec(cfg.data.dataset).shape
    size = cfg.data.image_size or h
    return (c, size, size)
