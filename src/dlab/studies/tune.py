"""`dlab tune`: Optuna hyperparameter search (TPE + median pruning) over a TOML search space.

A search-space file::

    name = "fashion-lr"        # optional, default: the file stem
    trials = 20                # default for --trials
    seed = 0                   # the TPE sampler's seed
    [base]                     # a run config, as in study files
    task = "classification"    # optional (the default); any task: "gan", "caption" …
    train.epochs = 5
    [space."optim.lr"]
    type = "float"             # "float" | "int" | "categorical"
    low = 1e-4
    high = 0.3
    log = true                 # float/int: log scale; optional `step`
    [space."optim.name"]
    type = "categorical"
    choices = ["sgd", "adam"]

    [pruner]                   # optional: optuna's MedianPruner
    startup_trials = 3         # complete trials before any is pruned
    warmup_epochs = 1          # epochs of a trial before it may be pruned

The objective is the task's primary metric at the run's best epoch, in the task's direction
(classification: val_acc, max). Each trial is an ordinary run in
`<runs_root>/tune/<name>/<config hash>/`, reported to the pruner epoch by epoch (the trainer's
`on_epoch` hook returns `trial.should_prune()`; the run then ends with status "pruned").
Parallel `dlab tune` processes on one storage (SQLite on one machine, PostgreSQL across many)
coordinate through the claim table of `dlab.studies.queue` (scope `dlab-tune:<name>`, one row
per config hash): a trial that draws a config another trial is training waits for it; a
finished config's value is reused without training; each process samples with its own seed
(spec seed + its registration number). A pruned config drawn again is not stuck: its stored
epochs are reported to the new trial, and unless the pruner prunes it at the same point it
is reopened and continues from its last checkpoint.
Storage: `sqlite:///<runs_root>/tune/<name>/optuna.db` unless a URL is given.
Must not import torch or optuna at module level.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlab.config import load_toml, merge
from dlab.errors import DlabError
from dlab.tasks import resolve_any
from dlab.results import is_done, primary_value, read_result, reopen
from dlab.runs import METRICS, read_jsonl, run_lock
from dlab.studies.queue import DONE, FAILED, RUNNING, WAITING, Queue, storage_error, with_driver
from dlab.studies.spec import flatten, nest

DEFAULT_TASK = "classification"  # a search space's [base] may name another: task = "gan"

_TOP_KEYS = {"name", "trials", "seed", "base", "space", "pruner"}
_PRUNER_KEYS = {"startup_trials": 3, "warmup_epochs": 1}
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
    startup_trials: int = 3
    warmup_epochs: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def load_tune_spec(path: str | Path) -> TuneSpec:
    """Read and validate a search-space file; errors name the file and the key."""
    path = Path(path)
    where = f"search space {str(path)!r}"
    data = load_toml(path, "search space")
    for key in data:
        if key not in _TOP_KEYS:
            raise DlabError(f"{where}: unknown key {key!r}; expected one of: "
                            + ", ".join(sorted(_TOP_KEYS)))
    base = data.get("base", {})
    if not isinstance(base, dict):
        raise DlabError(f"{where}: base = {base!r}; expected a [base] table of config keys")
    try:
        base = nest(flatten(base))
    except DlabError as exc:
        raise DlabError(f"{where}: base: {exc}") from None
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
    pruner = data.get("pruner", {})
    if not isinstance(pruner, dict):
        raise DlabError(f"{where}: pruner = {pruner!r}; expected a table")
    for key, value in pruner.items():
        if key not in _PRUNER_KEYS:
            raise DlabError(f"{where}: unknown key pruner.{key}; expected one of: "
                            + ", ".join(sorted(_PRUNER_KEYS)))
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DlabError(f"{where}: pruner.{key} = {value!r}; expected a non-negative integer")
    knobs = {**_PRUNER_KEYS, **pruner}
    return TuneSpec(name, path, base, params, trials, seed, knobs["startup_trials"],
                    knobs["warmup_epochs"])


def _resolve(base: dict, overrides: dict, where: str) -> None:
    try:
        resolve_any(merge(base, overrides))
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
        if not all(math.isfinite(v) for v in (low, high)):
            raise DlabError(f"{at}: low = {low!r}, high = {high!r}; expected finite numbers")
        log = value.get("log", False)
        if not isinstance(log, bool):
            raise DlabError(f"{at}.log = {log!r}; expected true or false")
        if log and low <= 0:
            raise DlabError(f"{at}: log = true needs low > 0 (got {low!r})")
        spec = ParamSpec(key, kind, low, high, log, _step(value, kind, log, low, high, at))
        probes = [low, high]
    for probe in probes:  # both ends must make valid configs, so errors surface before training
        _resolve(base, nest({key: probe}), at)
    return spec


def _step(value: dict, kind: str, log: bool, low: float, high: float, at: str
          ) -> float | None:
    """The parameter's `step` (None: continuous floats, 1 for ints), as optuna accepts it."""
    step = value.get("step")
    if step is None:
        return None
    num = (int,) if kind == "int" else (int, float)
    if isinstance(step, bool) or not isinstance(step, num) or not 0 < step < float("inf"):
        raise DlabError(f"{at}.step = {step!r}; expected "
                        + ("an integer >= 1" if kind == "int" else "a number > 0"))
    if log and (kind == "float" or step != 1):
        raise DlabError(f"{at}: step = {step!r} with log = true; a log-scale parameter takes "
                        "no step (optuna samples it continuously)"
                        + (" or step = 1" if kind == "int" else ""))
    if step > high - low:
        raise DlabError(f"{at}.step = {step!r}; expected at most high - low = {high - low!r}")
    return step


def suggest(trial: Any, params: tuple[ParamSpec, ...]) -> dict[str, Any]:
    """Draw one value per parameter from an Optuna trial; dotted key -> value."""
    out: dict[str, Any] = {}
    for p in params:
        if p.type == "float":
            out[p.key] = trial.suggest_float(p.key, p.low, p.high, log=p.log, step=p.step)
        elif p.type == "int":
            out[p.key] = trial.suggest_int(p.key, int(p.low), int(p.high), log=p.log,
                                           step=int(p.step or 1))
        elif all(c is None or isinstance(c, (bool, int, float, str)) for c in p.choices):
            out[p.key] = trial.suggest_categorical(p.key, list(p.choices))
        else:  # lists (e.g. model.hidden widths): optuna takes scalars, so draw their JSON text
            text = trial.suggest_categorical(p.key, [json.dumps(c) for c in p.choices])
            out[p.key] = json.loads(text)
    return out


def open_storage(url: str, heartbeat_s: int = 10, grace_s: int = 30):
    """An Optuna RDBStorage whose trials keep a heartbeat (a killed process's trial is failed)."""
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # two processes creating optuna's tables at once: the loser sees a table that "already
    # exists" or a duplicate schema-version row ("UNIQUE constraint failed: alembic_version…",
    # seen in CI); it looks again
    racing = ("already exists", "UNIQUE constraint failed", "duplicate key value")
    for attempt in range(3):
        try:
            return optuna.storages.RDBStorage(with_driver(url), heartbeat_interval=heartbeat_s,
                                              grace_period=grace_s)
        except Exception as exc:  # sqlalchemy/driver errors: one line naming the URL
            if attempt == 2 or not any(text in str(exc) for text in racing):
                raise storage_error(url, exc) from None
            time.sleep(0.5)


def run_tune(spec: TuneSpec, runs_root: Path, *, trials: int | None = None,
             storage: str | None = None, data_dir: str | None = None, device: str = "auto",
             heartbeat_s: int = 10, grace_s: int = 30, poll_s: float = 1.0,
             echo=print) -> dict[str, Any]:
    """Run `trials` more trials of the search; returns the best trial so far.

    Args:
        heartbeat_s, grace_s: a process training a config refreshes its claim every
            heartbeat_s; a claim silent for grace_s (a killed process) is taken over.
    """
    import optuna

    from dlab.tasks import get_task

    task = get_task(spec.base.get("task", DEFAULT_TASK))
    root = Path(runs_root).resolve() / "tune" / spec.name
    root.mkdir(parents=True, exist_ok=True)
    url = storage or f"sqlite:///{root / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    configs = Queue(url, f"dlab-tune:{spec.name}")
    number = _register(Queue(url, f"dlab-tune-processes:{spec.name}"))
    study = optuna.create_study(
        study_name=f"dlab-tune:{spec.name}", storage=open_storage(url, heartbeat_s, grace_s),
        direction="maximize" if task.direction == "max" else "minimize", load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=spec.seed + number),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=spec.startup_trials,
                                           n_warmup_steps=spec.warmup_epochs))
    trainer = _TrialRunner(spec, task, root, configs, data_dir, device,
                           heartbeat_s, grace_s, poll_s, echo)
    study.optimize(trainer.objective, n_trials=spec.trials if trials is None else trials,
                   catch=(DlabError,))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    states: dict[str, int] = {}
    for t in study.trials:
        states[t.state.name.lower()] = states.get(t.state.name.lower(), 0) + 1
    summary: dict[str, Any] = {"storage": url, "trials": states, "primary": task.primary,
                               "direction": task.direction}
    if done:
        best = study.best_trial
        summary.update(best_value=best.value, best_params=best.params,
                       best_run_dir=best.user_attrs.get("run_dir"))
    return summary


def _register(processes: Queue) -> int:
    """This process's number among all that ever tuned this search (0, 1, …), taken atomically."""
    number = len(processes.rows())
    while not processes.add(str(number), "process"):
        number += 1
    return number


@dataclass
class _TrialRunner:
    spec: TuneSpec
    task: Any
    root: Path
    configs: Queue
    data_dir: str | None
    device: str
    heartbeat_s: int
    grace_s: int
    poll_s: float
    echo: Any

    def objective(self, trial: Any) -> float:
        import optuna

        from dlab.studies.distributed import worker_id

        values = suggest(trial, self.spec.params)
        _, cfg = resolve_any(merge(self.spec.base, nest(values)))
        key, me = cfg.hash(), f"{worker_id()}:trial{trial.number}"
        run_dir = self.root / key
        trial.set_user_attr("run_dir", str(run_dir))
        self.configs.add(key, "tune")
        reuse = self._claim(key, me)
        if reuse is not None:
            self.echo(f"trial {trial.number}: {values} -> reused {reuse['status']} run "
                      f"{key}: {self.task.primary} {reuse['value']}")
            value = reuse["value"]
            return float("nan") if value is None else float(value)
        reporter = _Reporter(trial, self.task.primary)
        with self.configs.holding(key, me, self.heartbeat_s):
            try:
                result = self._train(cfg, run_dir, reporter)
            except KeyboardInterrupt:
                self.configs.release(key, me)
                raise
            except Exception as exc:
                self.configs.finish(key, FAILED, error=str(exc).splitlines()[0] if str(exc)
                                    else type(exc).__name__, expect=(RUNNING, WAITING))
                raise
        value, status = primary_value(result), result.get("status")
        self.configs.finish(key, DONE if is_done(result) else FAILED, status=status,
                            value=value, expect=(RUNNING, WAITING))
        self.echo(f"trial {trial.number}: {values} -> {status} {self.task.primary} {value} "
                  f"(epochs {result.get('epochs_completed')})")
        if status == "pruned":
            raise optuna.TrialPruned(f"pruned after epoch {result.get('epochs_completed')}")
        return float(value) if status == "finished" and value is not None else float("nan")

    def _claim(self, key: str, me: str) -> dict[str, Any] | None:
        """Claim the config's run directory (None), or a finished run's row to reuse; waits
        while another trial trains it."""
        while True:
            self.configs.reclaim(self.grace_s, max_lost=1_000_000)
            row = self.configs.row(key)
            if row["state"] == DONE and row["status"] != "pruned":
                return row
            if self.configs.claim(key, me, (WAITING, FAILED)) or \
                    self.configs.claim(key, me, (DONE,), status="pruned"):
                return None
            time.sleep(self.poll_s)  # another trial trains this config right now

    def _train(self, cfg: Any, run_dir: Path, reporter: "_Reporter") -> dict[str, Any]:
        """Train (or continue) the run, reporting its epochs to the trial; a run pruned before
        is reported up to where it stopped and continued unless the pruner prunes it again."""
        from dlab.tasks import RunContext, epoch_hook, run_task

        if run_dir.is_dir():
            with run_lock(run_dir):
                for row in read_jsonl(run_dir / METRICS):  # epochs trained by an earlier trial
                    reporter(row)
                before = read_result(run_dir)
                if before is not None and before["status"] == "pruned":
                    if reporter.pruned:
                        return before
                    reopen(run_dir)  # it resumes from checkpoints/last
        ctx = RunContext(run_dir, self.data_dir, self.device, progress=False,
                         callbacks=(epoch_hook(reporter),))
        return run_task(self.task, cfg, ctx)


class _Reporter:
    """The trainer's on_epoch hook: reports the primary metric, returns whether to prune."""

    def __init__(self, trial: Any, primary: str):
        self.trial, self.primary, self.seen, self.pruned = trial, primary, set(), False

    def __call__(self, row: dict[str, Any]) -> bool:
        value, epoch = row.get(self.primary), row.get("epoch")
        if isinstance(value, (int, float)) and isinstance(epoch, int) and epoch not in self.seen:
            self.seen.add(epoch)
            self.trial.report(float(value), epoch)
            self.pruned = self.trial.should_prune()
        return self.pruned
