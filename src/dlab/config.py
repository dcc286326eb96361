"""Typed, frozen run configuration: load TOML or dicts, apply `--set` overrides, validate, hash.

One `RunConfig` tree describes a training run completely. It is resolved once at the entry point
(CLI, study expansion), validated before any work starts, saved as `config.json` in the run
directory and hashed to identify the run (identical resolved configs are the same run).

Defaults are the JHU Fashion-MNIST assignment's: the default net, batch 256, test batch 1000,
10 epochs, SGD lr 0.01 momentum 0.5, seed 1, and the test set used as the validation set; the
normalization is each dataset's own (the fashion-a1 study sets the assignment's MNIST stats).

Must not import torch: the numpy engine and the study planner use it too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlab.errors import DlabError
from dlab.models import ACTIVATIONS, models  # noqa: F401 (ACTIVATIONS: the names, re-exported)
from dlab.models.cnn import CNNConfig  # noqa: F401 (re-exported: the built-in model configs)
from dlab.models.mlp import MLPConfig  # noqa: F401
from dlab.models.net import NetConfig

# Library-default learning rates (PyTorch's), used when an optimizer is named without an lr, as
# the assignment does for Adam and RMSprop. SGD has no library default in the assignment's sense;
# dlab uses the assignment's 0.01.
OPTIMIZER_DEFAULT_LR = {
    "sgd": 0.01,
    "adam": 1e-3,
    "adamw": 1e-3,
    "rmsprop": 1e-2,
    "adagrad": 1e-2,
    "adadelta": 1.0,
}
SCHEDULES = ("constant", "step", "exponential", "cosine", "onecycle", "triangle")
# Schedules whose lr at a given step does not depend on the run's length: a longer run of such a
# config repeats a shorter one step for step, so it can continue from the shorter run's end.
LENGTH_FREE_SCHEDULES = ("constant", "step", "exponential")
VALIDATION_MODES = ("test", "holdout")
CROP_FILLS = ("zero", "reflect")
FLIP_MODES = ("random", "alternate")
# test-time augmentation: the views averaged, as (dx, dy, mirrored) pixel shifts of the image; a
# view listed twice counts twice (and is computed once)
TTA_VIEWS = {
    "none": ((0, 0, False),),
    "flip": ((0, 0, False), (0, 0, True)),
    "flip-shift": tuple((dx, dy, m) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for m in (False, True)),
    # airbench's: the image and its mirror at half the weight, one-pixel diagonal shifts (both
    # ways, each mirrored too) at the other half
    "flip-diagonal": ((0, 0, False), (0, 0, True)) * 2
    + tuple((d, d, m) for d in (-1, 1) for m in (False, True)),
}


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation, applied on the device to whole batches."""

    crop_padding: int = 0  # random crop back to size after padding by this many pixels
    crop_fill: str = "zero"  # the padding: "zero" (black) or "reflect" (mirrored edge pixels)
    flip: bool = False  # horizontal flip
    # "random": each image with probability 0.5 at every epoch; "alternate": each image at
    # random in the first epoch, then all of them together at every other epoch, so every image
    # is seen both ways in each pair of epochs (airbench's alternating flip)
    flip_mode: str = "random"
    rotate_deg: float = 0.0  # affine: rotation drawn from [-rotate_deg, rotate_deg]
    translate: float = 0.0  # affine: shift drawn from [-t, t] as a fraction of the image size
    scale: float = 0.0  # affine: zoom factor drawn from [1 - s, 1 + s]
    erasing: float = 0.0  # probability of erasing one random rectangle (random erasing)
    erasing_area: float = 0.25  # the largest erased area as a fraction of the image

    def enabled(self) -> bool:
        return bool(self.crop_padding or self.flip or self.rotate_deg or self.translate
                    or self.scale or self.erasing)


@dataclass(frozen=True)
class DataConfig:
    """Which dataset, how it is normalized and split."""

    dataset: str = "fashion-mnist"
    validation: str = "test"  # "test": the test set is the validation set (as the assignment does)
    val_size: int = 5000  # hold-out size when validation = "holdout"
    split_seed: int = 0
    # per channel, or one value for all channels; empty: the dataset's own statistics (the JHU
    # assignment, fashion-a1, normalizes both MNIST and Fashion-MNIST with MNIST's)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    train_limit: int = 0  # use only the first N training images (0 = all): small slices for tests
    val_limit: int = 0  # use only the first N validation images (0 = all)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The normalization (mean, std) applied: the configured one, else the dataset's own."""
        if self.mean and self.std:
            return self.mean, self.std
        from dlab.data.sources import get_spec

        spec = get_spec(self.dataset)
        return self.mean or spec.mean, self.std or spec.std


# The architectures (config class + builder) live in `dlab.models`, one module each.
ModelConfig = Any
MODEL_CONFIGS: dict[str, type] = {name: spec.config_class for name, spec in models().items()}


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer and learning-rate schedule. `lr = None` means the optimizer's default."""

    name: str = "sgd"
    lr: float | None = None
    momentum: float | None = None  # None: 0.5 for SGD (the assignment's), 0 for RMSprop
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "constant"
    warmup_epochs: float = 0.0  # linear warm-up from 0, composed with any schedule
    step_epochs: int = 5  # "step": multiply by gamma every step_epochs
    gamma: float = 0.1  # "step" and "exponential" (per epoch) factor
    min_lr_factor: float = 0.0  # "cosine": final lr as a fraction of lr
    grad_clip: float = 0.0  # clip the total gradient norm to this (0 = off)
    # every K steps pull the weights onto their running average (airbench's lookahead,
    # dlab.torch_engine.lookahead; 0 = off)
    lookahead: int = 0
    # lr multiplier of the normalization layers' parameters (their weight decay is divided by
    # it: the same decay per step); airbench trains batch norm's shift at 64x
    norm_lr_scale: float = 1.0


PRECISIONS = ("auto", "bf16", "fp32")


@dataclass(frozen=True)
class TrainConfig:
    """The training loop's settings."""

    epochs: int = 10
    batch_size: int = 256
    eval_batch_size: int = 1000
    seed: int = 1
    label_smoothing: float = 0.0
    # test-time augmentation of the final evaluation (after the last epoch; per-epoch evaluation
    # stays single-view): "none", "flip" (image + mirror), "flip-shift" (mirror x 1-pixel shifts,
    # 18 views) or "flip-diagonal" (airbench's 6: mirror x the two diagonal 1-pixel shifts, the
    # unshifted pair weighing double); shifted views fill the edge as data.augment.crop_fill
    tta: str = "none"
    # the arithmetic of forward and backward passes: "auto" = bf16 autocast on CUDA and float32
    # on a CPU; "bf16" = bf16 autocast on a CPU too (fast where the CPU has AMX-BF16 or
    # AVX512-BF16, as these machines do: BENCHMARKS.md "bf16 on the CPU"); "fp32" = never
    precision: str = "auto"
    init_from: str = ""  # a checkpoint directory whose weights start this run (fine-tuning)
    # TensorBoard extras, as the original assignment used them (off by default: they cost
    # training time, BENCHMARKS.md "TensorBoard extras"): parameter and gradient histograms
    # every N optimizer steps (0 = off), and an embedding projector of 100 validation images
    # (penultimate features, labels, thumbnails) at the end of the run
    tb_histograms_every: int = 0
    tb_projector: bool = False
    # iteration-level curves (GaTech HW2): every N optimizer steps evaluate the validation set;
    # with N > 0 every step's training loss is also recorded (0 = per epoch only, the default)
    eval_every: int = 0
    # the course's files under this name prefix in the run directory ("" = none): PREFIX_
    # lossvstrain.png, PREFIX_valaccuracy.png, PREFIX_gridfilt.png, PREFIX.log, predictions.csv
    deliverables: str = ""


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's result (the device aside)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=NetConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def continues(self, shorter: "RunConfig") -> bool:
        """Whether this run repeats `shorter` step for step and then trains on: the same config
        but for more epochs, under an lr schedule that does not depend on the run's length."""
        return (self.optim.schedule in LENGTH_FREE_SCHEDULES
                and shorter.train.epochs < self.train.epochs
                and dataclasses.replace(shorter, train=dataclasses.replace(
                    shorter.train, epochs=self.train.epochs)) == self)

    def hash(self) -> str:
        """The run's key: a digest of the values that differ from the defaults (`config_key`),
        so adding a config field with a default leaves every existing key unchanged."""
        return config_key(self, "classification")

    def legacy_hash(self) -> str:
        """The key dlab 0.1 gave this config (a digest of the whole resolved config), to find
        run directories written before `config_key` existed."""
        return digest(self.legacy_dict())

    def legacy_dict(self) -> dict[str, Any]:
        """`to_dict()` as dlab 0.1 wrote it: without the fields added since (when at their
        default), and with the normalization spelled out (0.1 had no "the dataset's own")."""
        data = self.to_dict()
        data["data"]["mean"], data["data"]["std"] = self.data.stats()
        for dotted in FIELDS_ADDED_SINCE_0_1:
            parent, _, leaf = dotted.rpartition(".")
            node = data
            for part in parent.split(".") if parent else ():
                node = node.get(part, {})
            if leaf in node and node[leaf] == _default_at(dotted):
                del node[leaf]
        return data


# ---------------------------------------------------------------------------------------------
# Run identity

KEY_SCHEMA = 1  # bump only when the meaning of existing config values changes
# dotted keys of RunConfig fields added after dlab 0.1, dropped (when at their default) from the
# legacy digest so that 0.1's run directories are still found
FIELDS_ADDED_SINCE_0_1: tuple[str, ...] = ("train.tb_histograms_every", "train.tb_projector",
                                             "train.eval_every", "train.deliverables",
                                             "train.precision", "optim.lookahead",
                                             "optim.norm_lr_scale", "data.augment.crop_fill",
                                             "data.augment.flip_mode")


def digest(obj: Any) -> str:
    """12 hex digits of the SHA-256 of `obj` as canonical JSON."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def non_default(cfg: Any) -> dict[str, Any]:
    """The fields of the config dataclass `cfg` whose values differ from its class defaults,
    nested; a sub-config of another type than the default's (another model) is compared with
    its own class's defaults and keeps its `name`."""
    out: dict[str, Any] = {}
    default = type(cfg)()
    for f in dataclasses.fields(cfg):
        value, base = getattr(cfg, f.name), getattr(default, f.name)
        if dataclasses.is_dataclass(value):
            sub = non_default(value)
            if type(value) is not type(base) and hasattr(value, "name"):
                sub["name"] = value.name
            if sub:
                out[f.name] = sub
        elif value != base:
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def config_key(cfg: Any, task: str) -> str:
    """A run's key: the task, the key schema and the non-default config values, digested."""
    return digest({"task": task, "key_schema": KEY_SCHEMA, "values": non_default(cfg)})


def _default_at(dotted: str) -> Any:
    node: Any = RunConfig()
    for part in dotted.split("."):
        node = getattr(node, part)
    return list(node) if isinstance(node, tuple) else node


# ---------------------------------------------------------------------------------------------
# Building from plain data


_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_PLURAL = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}


def _type_name(tp: Any) -> str:
    """The annotation `tp` in words, as the messages state it ("a number", not float | None)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_PLURAL.get(args[0], 'values')}"
        return f"a list of {len(args)} {_PLURAL.get(args[0], 'values')}"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return _WORDS.get(tp) or getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting lists to tuples and ints to floats."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except DlabError:
                pass
        raise DlabError(f"{key} = {value!r}: expected {_type_name(tp)}")
    if origin is tuple:
        words = _type_name(tp)
        args = typing.get_args(tp)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise DlabError(f"{key} = {value!r}: expected {words}")
        if len(args) == 2 and args[1] is Ellipsis:
            try:
                return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
            except DlabError:
                raise DlabError(f"{key} = {value!r}: expected {words}") from None
        if len(value) != len(args):
            raise DlabError(f"{key} = {value!r}: expected {words}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise DlabError(f"{key} = {value!r}: expected true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise DlabError(f"{key} = {value!r}: expected an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise DlabError(f"{key} = {value!r}: expected a number")
    if tp is str:
        if isinstance(value, str):
            return value
        raise DlabError(f"{key} = {value!r}: expected a string")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    raise DlabError(f"{key}: unsupported config type {tp}")


def from_dict(cls: type, data: Any, where: str = "") -> Any:
    """Build the frozen dataclass `cls` from a mapping; unknown keys and wrong types are errors."""
    if dataclasses.is_dataclass(data):
        data = dataclasses.asdict(data)
    if not isinstance(data, dict):
        raise DlabError(f"{where or 'config'}: expected a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in names:
            raise DlabError(f"unknown config key {path!r}; expected one of: "
                            + ", ".join(sorted(names)))
        if key == "model" and cls is RunConfig:
            kwargs[key] = _model_from_dict(value, path)
        else:
            kwargs[key] = _coerce(value, hints[key], path)
    return cls(**kwargs)


def _model_from_dict(data: Any, where: str) -> ModelConfig:
    if dataclasses.is_dataclass(data):
        data = dataclasses.asdict(data)
    if not isinstance(data, dict):
        raise DlabError(f"{where}: expected a table, got {data!r}")
    name = data.get("name", "net")
    if name not in MODEL_CONFIGS:
        raise DlabError(f"unknown model {name!r}; expected one of: " + ", ".join(MODEL_CONFIGS))
    return from_dict(MODEL_CONFIGS[name], data, where)


# ---------------------------------------------------------------------------------------------
# Overrides


def parse_value(text: str) -> Any:
    """Parse a `--set` value as a TOML value (numbers, booleans, lists), else keep it a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `overrides` into a copy of `base`. A new model name starts a fresh model table."""
    out = json.loads(json.dumps(base))
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            if key == "model" and "name" in value and value["name"] != out[key].get("name", "net"):
                out[key] = dict(value)
            else:
                out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def dotted_to_nested(pairs: dict[str, Any]) -> dict[str, Any]:
    """Turn {"model.width": 2} into {"model": {"width": 2}}."""
    nested: dict[str, Any] = {}
    for dotted, value in pairs.items():
        parts = dotted.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise DlabError(f"--set {dotted}: {part!r} is not a table")
        node[parts[-1]] = value
    return nested


def parse_set_args(items: list[str]) -> dict[str, Any]:
    """Parse `--set key=value` items into a nested override dict."""
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DlabError(f"--set {item!r}: expected key=value, e.g. model.width=2")
        pairs[key.strip()] = parse_value(value.strip())
    return dotted_to_nested(pairs)


def read_text_file(path: str | Path, what: str = "config file") -> str:
    """The UTF-8 text of the file `path`; a missing, unreadable or binary file, or a folder,
    is a one-line error naming `what` and the path."""
    where = f"{what} {str(path)!r}"
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DlabError(f"{where} not found") from None
    except IsADirectoryError:
        raise DlabError(f"{where} is a folder; expected a TOML file") from None
    except UnicodeDecodeError as exc:
        raise DlabError(f"{where} is not UTF-8 text (byte {exc.start}: "
                        f"{exc.object[exc.start:exc.start + 1]!r}); expected a TOML file") from None
    except OSError as exc:
        raise DlabError(f"{where} cannot be read: {exc.strerror or exc}") from None


def load_toml(path: str | Path, what: str = "config file", _seen: tuple[Path, ...] = ()
              ) -> dict[str, Any]:
    """Read a TOML file; a missing or unreadable file or a syntax error is a one-line error
    naming the file. `extends = "other.toml"` (relative to this file) starts from that file's
    values, which this file's override (`merge`): a variant of a recipe names only what
    differs."""
    text = read_text_file(path, what)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DlabError(f"{what} {str(path)!r}: {exc}") from None
    if "extends" not in data:
        return data
    parent = data.pop("extends")
    if not isinstance(parent, str) or not parent:
        raise DlabError(f"{what} {str(path)!r}: extends = {parent!r}; expected the name of "
                        "a TOML file")
    here = Path(path).resolve()
    base = here.parent / parent
    if base.resolve() in (here, *_seen):
        raise DlabError(f"{what} {str(path)!r}: extends {parent!r}, which extends it back; "
                        "expected a chain of files that ends")
    return merge(load_toml(base, what, (*_seen, here)), data)


# ---------------------------------------------------------------------------------------------
# Resolution and validation


def resolve(data: dict[str, Any] | None = None) -> RunConfig:
    """Build, fill optimizer defaults into, and validate a RunConfig from nested plain data."""
    cfg = from_dict(RunConfig, _upgrade(data or {}))
    cfg = _fill_optimizer_defaults(cfg)
    validate(cfg)
    return cfg


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Configs written by older dlab versions (run directories, checkpoints) in today's keys:
    train.eval_flip = true/false became train.tta = "flip"/"none"."""
    train = data.get("train")
    if isinstance(train, dict) and "eval_flip" in train:
        train = dict(train)
        train.setdefault("tta", "flip" if train.pop("eval_flip") else "none")
        data = {**data, "train": train}
    return data


def _fill_optimizer_defaults(cfg: RunConfig) -> RunConfig:
    opt = cfg.optim
    if opt.name not in OPTIMIZER_DEFAULT_LR:
        raise DlabError(f"unknown optimizer {opt.name!r}; expected one of: "
                        + ", ".join(OPTIMIZER_DEFAULT_LR))
    lr = OPTIMIZER_DEFAULT_LR[opt.name] if opt.lr is None else opt.lr
    momentum = opt.momentum
    if momentum is None:
        momentum = 0.5 if opt.name == "sgd" else 0.0
    return dataclasses.replace(cfg, optim=dataclasses.replace(opt, lr=lr, momentum=momentum))


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise DlabError(message)


# torch.manual_seed and torch.Generator.manual_seed take seeds in this range
SEED_RANGE = (-2**63, 2**64 - 1)


def check_finite(cfg: Any, where: str) -> None:
    """Every float of the config dataclass `cfg` (and of its tuples and sub-configs) is finite;
    else a one-line error naming the dotted key."""
    for f in dataclasses.fields(cfg):
        value, key = getattr(cfg, f.name), f"{where}.{f.name}" if where else f.name
        if dataclasses.is_dataclass(value):
            check_finite(value, key)
            continue
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, float) and not math.isfinite(v):
                shown = list(value) if isinstance(value, tuple) else value
                raise DlabError(f"{key} = {shown}; expected a finite number")


def _check_seed(key: str, seed: int) -> None:
    lo, hi = SEED_RANGE
    _check(lo <= seed <= hi, f"{key} = {seed}; expected an integer from -2**63 to 2**64-1 "
           "(the seeds torch accepts)")


def _check_crop_padding(d: DataConfig, batch_size: int) -> None:
    """A padding larger than the image crops mostly zeros, and the padded batch grows with its
    square: refuse it with the memory it would need."""
    from dlab.data.sources import get_spec

    channels, height, width = get_spec(d.dataset).shape
    pad = d.augment.crop_padding
    most = min(height, width)
    if d.augment.crop_fill == "reflect" and pad >= most:  # a mirror needs an edge to reflect
        raise DlabError(f"data.augment.crop_padding = {pad}; expected at most {most - 1} with "
                        f"crop_fill = 'reflect' (the images are {height}x{width})")
    if pad > most:
        need = batch_size * channels * (height + 2 * pad) * (width + 2 * pad) * 4
        raise DlabError(f"data.augment.crop_padding = {pad}; expected at most {most} (the "
                        f"images are {height}x{width}; a padded batch of {batch_size} would "
                        f"need {_bytes(need)})")


def _bytes(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} TB"


def validate(cfg: RunConfig) -> None:
    """Raise DlabError naming the first bad value; called before any data loads or training."""
    from dlab.data.sources import DATASETS  # torch-free registry of dataset names

    d, m, o, t = cfg.data, cfg.model, cfg.optim, cfg.train
    _check(d.dataset in DATASETS, f"unknown dataset {d.dataset!r}; expected one of: "
           + ", ".join(DATASETS))
    _check(d.validation in VALIDATION_MODES, f"data.validation = {d.validation!r}; expected "
           "'test' (test set as validation) or 'holdout'")
    _check(d.val_size >= 1, f"data.val_size = {d.val_size}; expected >= 1")
    _check(d.train_limit >= 0 and d.val_limit >= 0, "data.train_limit/val_limit must be >= 0")
    _check(not (d.mean and d.std) or len(d.mean) == len(d.std),
           f"data.mean {list(d.mean)} and data.std {list(d.std)} must have the same length "
           "(empty: the dataset's own statistics)")
    _check(all(s > 0 for s in d.std), f"data.std = {list(d.std)}; expected positive values")
    _check(d.split_seed >= 0, f"data.split_seed = {d.split_seed}; expected an integer >= 0")
    a = d.augment
    _check(a.crop_padding >= 0, f"data.augment.crop_padding = {a.crop_padding}; expected >= 0")
    _check(a.crop_fill in CROP_FILLS, f"data.augment.crop_fill = {a.crop_fill!r}; expected one "
           "of: " + ", ".join(repr(k) for k in CROP_FILLS))
    _check(a.flip_mode in FLIP_MODES, f"data.augment.flip_mode = {a.flip_mode!r}; expected one "
           "of: " + ", ".join(repr(k) for k in FLIP_MODES))
    _check_crop_padding(d, t.batch_size)
    _check(0.0 <= a.rotate_deg <= 180.0,
           f"data.augment.rotate_deg = {a.rotate_deg}; expected degrees in [0, 180]")
    for key in ("erasing", "erasing_area", "translate", "scale"):
        value = getattr(a, key)
        _check(0.0 <= value <= 1.0, f"data.augment.{key} = {value}; expected a value in [0, 1]")
    _validate_model(m)
    _check(o.lr is not None and o.lr > 0, f"lr = {o.lr}; expected a learning rate > 0")
    _check(0.0 <= o.momentum < 1.0, f"momentum = {o.momentum}; expected a value in [0, 1)")
    _check(not o.nesterov or (o.name == "sgd" and o.momentum > 0),
           "optim.nesterov = true needs optimizer 'sgd' with momentum > 0")
    _check(o.weight_decay >= 0, f"weight_decay = {o.weight_decay}; expected >= 0")
    _check(o.schedule in SCHEDULES, f"unknown schedule {o.schedule!r}; expected one of: "
           + ", ".join(SCHEDULES))
    _check(o.warmup_epochs >= 0, f"optim.warmup_epochs = {o.warmup_epochs}; expected >= 0")
    _check(o.step_epochs >= 1, f"optim.step_epochs = {o.step_epochs}; expected >= 1")
    _check(0 < o.gamma <= 1, f"optim.gamma = {o.gamma}; expected a value in (0, 1]")
    _check(0.0 <= o.min_lr_factor <= 1.0,
           f"optim.min_lr_factor = {o.min_lr_factor}; expected a value in [0, 1]")
    _check(all(0.0 <= b < 1.0 for b in o.betas),
           f"optim.betas = {list(o.betas)}; expected two values in [0, 1)")
    _check(o.grad_clip >= 0, f"optim.grad_clip = {o.grad_clip}; expected >= 0")
    _check(o.lookahead >= 0, f"optim.lookahead = {o.lookahead}; expected steps >= 0 (0 = off)")
    _check(o.norm_lr_scale > 0, f"optim.norm_lr_scale = {o.norm_lr_scale}; expected > 0")
    _check(t.epochs >= 1, f"epochs = {t.epochs}; expected >= 1")
    _check(t.batch_size >= 1, f"batch size = {t.batch_size}; expected >= 1")
    _check(t.eval_batch_size >= 1, f"eval batch size = {t.eval_batch_size}; expected >= 1")
    _check(t.tb_histograms_every >= 0,
           f"train.tb_histograms_every = {t.tb_histograms_every}; expected >= 0 (0 = off)")
    _check(t.eval_every >= 0, f"train.eval_every = {t.eval_every}; expected >= 0 (0 = off)")
    _check(not t.deliverables or t.eval_every > 0, f"train.deliverables = {t.deliverables!r} "
           "needs train.eval_every > 0 (its curves are per iteration)")
    _check(t.deliverables == "" or t.deliverables.replace("-", "").replace("_", "").isalnum(),
           f"train.deliverables = {t.deliverables!r}; expected a file-name prefix of letters, "
           "digits, '-' and '_'")
    _check(t.precision in PRECISIONS, f"train.precision = {t.precision!r}; expected one of: "
           f"{', '.join(PRECISIONS)}")
    _check(t.tta in TTA_VIEWS, f"train.tta = {t.tta!r}; expected one of: "
           + ", ".join(repr(k) for k in TTA_VIEWS))
    _check(0.0 <= t.label_smoothing < 1.0,
           f"label_smoothing = {t.label_smoothing}; expected a value in [0, 1)")
    _check_seed("train.seed", t.seed)
    check_finite(cfg, "")  # what the range checks above let through: inf (and nan) anywhere


def _validate_model(m: ModelConfig) -> None:
    m.validate()  # each architecture checks its own knobs (dlab.models)


def load_run_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None
                    ) -> RunConfig:
    """Resolve a RunConfig from an optional TOML file and nested overrides (later wins)."""
    data = load_toml(path) if path else {}
    return resolve(merge(data, overrides or {}))
