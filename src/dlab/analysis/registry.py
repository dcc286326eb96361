"""The registry of analysis experiments: name → sizes config, `--full` sizes, compute function.

Each module in `dlab.analysis.experiments` defines one `ExperimentSpec` named `SPEC`; modules
are discovered (a new experiment is one new module, nothing lists them), ordered by the spec's
`order`. A spec's config is a frozen dataclass whose defaults are the reduced sizes (fast on a
2-core CPU) and whose fields declare their bounds (`dlab.analysis.sizes`); `full` holds the
overrides that restore the original assignment's sizes. `AnalysisConfig` is the config of the
task "analysis": which experiment, and its resolved sizes. Configs are resolved once here and
validated before any data loads or training starts. This module imports torch only when the
experiments are loaded.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from dlab.analysis.sizes import check_sizes, require  # noqa: F401  (require: re-exported)
from dlab.config import config_key, from_dict, merge
from dlab.errors import DlabError

TASK_NAME = "analysis"


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
    order: int = 100  # position in listings and the combined report


@dataclass(frozen=True)
class NoSettings:
    """The settings of an `AnalysisConfig` that names no experiment yet (its default)."""


@dataclass(frozen=True)
class AnalysisConfig:
    """One analysis run: the experiment's name and its resolved, validated sizes."""

    experiment: str = ""
    settings: Any = dataclasses.field(default_factory=NoSettings)

    def to_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "settings": dataclasses.asdict(self.settings)}

    def hash(self) -> str:
        """The run's key: the experiment and the sizes that differ from its defaults."""
        return config_key(self, TASK_NAME)


@lru_cache(maxsize=None)
def _discovered() -> tuple[ExperimentSpec, ...]:
    from dlab.analysis import experiments as package

    found = []
    for mod in pkgutil.iter_modules(package.__path__):
        spec = getattr(importlib.import_module(f"{package.__name__}.{mod.name}"), "SPEC", None)
        if isinstance(spec, ExperimentSpec):
            found.append(spec)
    return tuple(sorted(found, key=lambda spec: (spec.order, spec.name)))


def experiments() -> dict[str, ExperimentSpec]:
    """All experiments by name, in report order (discovered from `dlab.analysis.experiments`)."""
    return {spec.name: spec for spec in _discovered()}


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
    check_sizes(cfg, spec.name)
    return cfg


def resolve_analysis(data: dict[str, Any]) -> AnalysisConfig:
    """An `AnalysisConfig` from plain data `{"experiment": NAME, "full": false, "settings":
    {...}}`: `full` starts from the original sizes (it is not kept: the sizes say it all)."""
    data = dict(data)
    unknown = sorted(set(data) - {"experiment", "full", "settings"})
    if unknown:
        raise DlabError(f"unknown config key {unknown[0]!r}; expected one of: experiment, full, "
                        "settings")
    name = data.get("experiment")
    if not isinstance(name, str) or not name:
        raise DlabError(f"experiment = {name!r}: expected an experiment name, one of: "
                        + ", ".join(experiments()))
    full = data.get("full", False)
    if not isinstance(full, bool):
        raise DlabError(f"full = {full!r}: expected true or false")
    settings = data.get("settings", {})
    if dataclasses.is_dataclass(settings):
        settings = dataclasses.asdict(settings)
    if not isinstance(settings, dict):
        raise DlabError(f"settings = {settings!r}: expected a table of {name} sizes")
    specs = experiments()
    if name not in specs:
        raise DlabError(f"experiment = {name!r}: expected one of: " + ", ".join(specs))
    return AnalysisConfig(name, resolve_config(specs[name], settings, full))
