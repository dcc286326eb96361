"""The registry of analysis experiments: name → sizes config, `--full` sizes, compute function.

Each experiment module in `dlab.analysis.experiments` defines one `ExperimentSpec`. A spec's
config is a frozen dataclass whose defaults are the reduced sizes (fast on a 2-core CPU);
`full` holds the overrides that restore the original assignment's sizes. Configs are resolved
once here (`resolve_config`) and validated before any data loads or training starts.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dlab.config import from_dict, merge
from dlab.errors import DlabError

EXPERIMENT_MODULES = ("functions", "mnist_depth", "trajectory", "grad_norm", "minimal_ratio",
                      "random_labels", "width", "interpolation", "sensitivity")


@dataclass(frozen=True)
class ContextSpec:
    """Where an experiment finds its data, and how it reports progress."""

    data_dir: str | Path | None = None
    log: Callable[[str], None] = lambda message: None


@dataclass(frozen=True)
class ExperimentSpec:
    """One experiment: its CLI name, title, sizes config class, full-size overrides, compute."""

    name: str
    title: str
    config_cls: type
    full: dict[str, Any]
    compute: Callable[[Any, ContextSpec], Any]  # (config, context) -> ExperimentResult
    description: str = ""


def experiments() -> dict[str, ExperimentSpec]:
    """All experiments by name, in report order."""
    specs = {}
    for module_name in EXPERIMENT_MODULES:
        spec = importlib.import_module(f"dlab.analysis.experiments.{module_name}").SPEC
        specs[spec.name] = spec
    return specs


def get_experiment(name: str) -> ExperimentSpec:
    specs = experiments()
    if name not in specs:
        raise DlabError(f"unknown experiment {name!r}; expected one of: "
                        + ", ".join(specs) + ", list, all")
    return specs[name]


def resolve_config(spec: ExperimentSpec, overrides: dict[str, Any] | None = None,
                   full: bool = False) -> Any:
    """The experiment's sizes: defaults, then `--full` sizes, then `--set` overrides; validated."""
    data = merge(spec.full if full else {}, overrides or {})
    cfg = from_dict(spec.config_cls, data, where=spec.name)
    check_config(cfg, spec.name)
    return cfg


def check_config(cfg: Any, where: str) -> None:
    """Generic checks on a sizes config (sizes and rates > 0, fractions in [0, 1]), then its own."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            if f.name.endswith("_frac") and not 0 <= v <= 1:
                raise DlabError(f"{where}.{f.name} = {value!r}; expected a value in [0, 1]")
            # seeds may be 0 and slice limits 0 means "all"; every other size must be positive
            zero_ok = f.name == "seed" or f.name.endswith("_limit")
            if v < 0 or (v == 0 and not zero_ok):
                raise DlabError(f"{where}.{f.name} = {value!r}; expected "
                                + (">= 0" if zero_ok else "a positive value"))
    names = {f.name for f in dataclasses.fields(cfg)}
    if "dataset" in names:
        from dlab.data.sources import DATASETS

        require(cfg.dataset in DATASETS, f"{where}.dataset = {cfg.dataset!r}; expected one of: "
                + ", ".join(DATASETS))
    if "activation" in names:
        from dlab.analysis.nets import ACTIVATIONS

        require(cfg.activation in ACTIVATIONS, f"{where}.activation = {cfg.activation!r}; "
                "expected one of: " + ", ".join(ACTIVATIONS))
    own = getattr(cfg, "validate", None)
    if own is not None:
        own()


def require(ok: bool, message: str) -> None:
    """Raise a one-line DlabError unless `ok` (for the configs' own `validate` methods)."""
    if not ok:
        raise DlabError(message)
