"""`dlab tune`: Optuna hyperparameter search (TPE + median pruning) over a TOML search space.

A search-space file::

    name = "fashion-lr"        # optional, default: the file stem
    trials = 20                # default for --trials
    seed = 0                   # the TPE sampler's seed
    [base]                     # a run config, as in study files
    train.epochs = 5
    [space."optim.lr"]
    type = "float"             # "float" | "int" | "categorical"
    low = 1e-4
    high = 0.3
    log = true                 # float/int: log scale; optional `step`
    [space."optim.name"]
    type = "categorical"
    choices = ["sgd", "adam"]

Each trial is an ordinary run in `<runs_root>/tune/<name>/<config hash>/` (an identical config
tried again reuses its finished run), reports val_acc per epoch for the MedianPruner, and its
value is the run's best val_acc. Storage: `sqlite:///<runs_root>/tune/<name>/optuna.db` unless
a URL is given; many `dlab tune` processes on many machines can share one PostgreSQL URL.
Must not import torch or optuna at module level.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlab.config import merge, resolve
from dlab.errors import DlabError
from dlab.studies.spec import flatten, nest

_TOP_KEYS = {"name", "trials", "seed", "base", "space"}
_PARAM_KEYS = {"float": {"type", "low", "high", "log", "step"},
               "int": {"type", "low", "high", "log", "step"},
               "categorical": {"type", "choices"}}


@dataclass(frozen=True)
class ParamSpec:
    """One searched config key."""

    key: str  # dotted config key, e.g. "optim.lr"
    type: str  # "float" | "int" | "categorical"
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True)
class TuneSpec:
    """A search: base config, parameters, defaults."""

    name: str
    path: Path
    base: dict[str, Any]
    params: tuple[ParamSpec, ...]
    trials: int = 20
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def load_tune_spec(path: str | Path) -> TuneSpec:
    """Read and validate a search-space file; errors name the file and the key."""
    path = Path(path)
    where = f"search space {str(path)!r}"
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise DlabError(f"{where} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise DlabError(f"{where}: {exc}") from None
    for key in data:
        if key not in _TOP_KEYS:
            raise DlabError(f"{where}: unknown key {key!r}; expected one of: "
                            + ", ".join(sorted(_TOP_KEYS)))
    base = nest(flatten(data.get("base", {})))
    _resolve(base, {}, f"{where}: base")
    space = data.get("space", {})
    if not isinstance(space, dict) or not space:
        raise DlabError(f"{where}: expected a [space.\"<config key>\"] table per searched key")
    params = tuple(_param(key, value, base, where) for key, value in space.items())
    trials, seed = data.get("trials", 20), data.get("seed", 0)
    for key, value in (("trials", trials), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DlabError(f"{where}: {key} = {value!r}; expected a non-negative integer")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name or "/" in name:
        raise DlabError(f"{where}: name = {name!r}; expected a non-empty name without '/'")
    return TuneSpec(name, path, base, params, trials, seed)


def _resolve(base: dict, overrides: dict, where: str) -> None:
    try:
        resolve(merge(base, overrides))
    except DlabError as exc:
        raise DlabError(f"{where}: {exc}") from None


def _param(key: str, value: Any, base: dict, where: str) -> ParamSpec:
    at = f"{where}: space.{key}"
    if not isinstance(value, dict):
        raise DlabError(f"{at}: expected a table with type = float|int|categorical")
    kind = value.get("type")
    if kind not in _PARAM_KEYS:
        raise DlabError(f"{at}.type = {kind!r}; expected 'float', 'int' or 'categorical'")
    for k in value:
        if k not in _PARAM_KEYS[kind]:
            raise DlabError(f"{at}: unknown key {k!r} for a {kind} parameter; expected one of: "
                            + ", ".join(sorted(_PARAM_KEYS[kind])))
    if kind == "categorical":
        choices = value.get("choices")
        if not isinstance(choices, list) or not choices:
            raise DlabError(f"{at}.choices = {choices!r}; expected a non-empty list")
        spec = ParamSpec(key, kind, choices=tuple(choices))
        probes = list(choices)
    else:
        low, high = value.get("low"), value.get("high")
        num = (int,) if kind == "int" else (int, float)
        if not all(isinstance(v, num) and not isinstance(v, bool) for v in (low, high)) \
                or low >= high:
            raise DlabError(f"{at}: low = {low!r}, high = {high!r}; expected {kind}s with "
                            "low < high")
        log = value.get("log", False)
        if log and low <= 0:
            raise DlabError(f"{at}: log = true needs low > 0 (got {low!r})")
        spec = ParamSpec(key, kind, low, high, bool(log), value.get("step"))
        probes = [low, high]
    for probe in probes:  # both ends must make valid configs, so errors surface before training
        _resolve(base, nest({key: probe}), at)
    return spec


def suggest(trial: Any, params: tuple[ParamSpec, ...]) -> dict[str, Any]:
    """Draw one value per parameter from an Optuna trial; dotted key -> value."""
    out: dict[str, Any] = {}
    for p in params:
        if p.type == "float":
            out[p.key] = trial.suggest_float(p.key, p.low, p.high, log=p.log, step=p.step)
        elif p.type == "int":
            out[p.key] = trial.suggest_int(p.key, int(p.low), int(p.high), log=p.log,
                                           step=int(p.step or 1))
        else:
            out[p.key] = trial.suggest_categorical(p.key, list(p.choices))
    return out


def run_tune(spec: TuneSpec, runs_root: Path, *, trials: int | None = None,
             storage: str | None = None, data_dir: str | None = None, device: str = "auto",
             echo=print) -> dict[str, Any]:
    """Run `trials` more trials of the search; returns the best trial so far."""
    import optuna

    from dlab.studies.distributed import open_storage
    from dlab.torch_engine.train import train_run

    root = Path(runs_root).resolve() / "tune" / spec.name
    root.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{root / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=f"dlab-tune:{spec.name}", storage=open_storage(url), direction="maximize",
        load_if_exists=True, sampler=optuna.samplers.TPESampler(seed=spec.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1))

    def objective(trial: optuna.Trial) -> float:
        values = suggest(trial, spec.params)
        cfg = resolve(merge(spec.base, nest(values)))
        run_dir = root / cfg.hash()
        trial.set_user_attr("run_dir", str(run_dir))

        def on_epoch(row: dict[str, Any]) -> None:
            if row.get("val_acc") is None:
                return
            trial.report(row["val_acc"], row["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {row['epoch']}")

        result = train_run(cfg, run_dir, data_dir=data_dir, device=device, progress=False,
                           on_epoch=on_epoch)
        status = result.get("status")
        echo(f"trial {trial.number}: {values} -> {status} best_val_acc "
             f"{result.get('best_val_acc')}")
        if status == "pruned":
            raise optuna.TrialPruned()
        best = result.get("best_val_acc")
        return float(best) if status == "finished" and best is not None else float("nan")

    study.optimize(objective, n_trials=spec.trials if trials is None else trials,
                   catch=(DlabError,))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    states: dict[str, int] = {}
    for t in study.trials:
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    summary: dict[str, Any] = {"storage": url, "trials": states}
    if done:
        best = study.best_trial
        summary.update(best_value=best.value, best_params=best.params,
                       best_run_dir=best.user_attrs.get("run_dir"))
    return summary
