"""Workers on many machines sharing one Optuna RDB storage (PostgreSQL) as the work queue.

`enqueue_plan` creates the Optuna study `dlab-study:<name>` once and enqueues one trial per
work item (user attribute "key" = the item's key; items already enqueued are skipped), in the
plan's dependency order. Each `work` process re-plans the study locally (keys do not depend on
the machine) and repeatedly runs `study.optimize(n_trials=1)`, which pops the oldest waiting
trial atomically, keeps its heartbeat while the item trains, and fails stale trials of killed
workers; `RetryHeartbeatStaleTrialCallback` re-enqueues them, and the retry resumes from the
run's checkpoint. The run directories must be on storage every worker sees (or each machine
keeps its own, and eval/finetune steps need their source's checkpoint there).
Coordination is Optuna's alone: nothing home-made. Imports optuna and torch only when called.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dlab.errors import DlabError
from dlab.runs import read_result
from dlab.studies.execute import execute_item, summary_line
from dlab.studies.plan import StudyPlan


@dataclass(frozen=True)
class WorkerConfig:
    """How one distributed worker runs."""

    storage: str
    data_dir: str | None = None
    device: str = "auto"
    heartbeat_s: int = 10
    grace_s: int = 30  # a trial whose heartbeat is older than this is failed and retried
    max_retry: int = 3
    poll_s: float = 1.0
    threads: int = 0  # torch threads in this worker; 0 = torch's default


def study_name(plan: StudyPlan) -> str:
    return f"dlab-study:{plan.study.name}"


def open_storage(url: str, heartbeat_s: int = 10, grace_s: int = 30, max_retry: int = 3):
    """An RDBStorage with heartbeats and automatic retry of trials whose worker died."""
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        return optuna.storages.RDBStorage(
            with_driver(url), heartbeat_interval=heartbeat_s, grace_period=grace_s,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=max_retry))
    except Exception as exc:  # sqlalchemy/driver errors: make them one line naming the URL
        raise DlabError(f"cannot open storage {_safe(url)}: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}") from None


def with_driver(url: str) -> str:
    """A PostgreSQL URL without a driver gets psycopg2 (psycopg2-binary, dlab's [postgres] extra):
    SQLAlchemy 2.1 would otherwise pick psycopg 3."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme):]
    return url


def _safe(url: str) -> str:
    """The URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':')[0]}:***@{host}" if ":" in cred else url
    return url


def enqueue_plan(plan: StudyPlan, url: str) -> tuple[int, int]:
    """Create the queue study (if missing) and enqueue items not yet in it: (added, present)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url)
    study = optuna.create_study(study_name=study_name(plan), storage=storage,
                                direction="maximize", load_if_exists=True)
    present = {t.user_attrs.get("key") for t in study.get_trials(deepcopy=False)}
    added = 0
    for item in plan.runs:
        if item.key not in present:
            study.enqueue_trial({}, user_attrs={"key": item.key, "kind": item.kind},
                                skip_if_exists=False)
            added += 1
    study.set_user_attr("items", len(plan.runs))
    return added, len(present - {None})


def trial_counts(plan: StudyPlan, url: str) -> dict[str, dict[str, int]]:
    """Per item key: how many of its trials are in each state (WAITING, RUNNING, COMPLETE …)."""
    import optuna

    study = optuna.load_study(study_name=study_name(plan), storage=open_storage(url))
    counts: dict[str, dict[str, int]] = {}
    for t in study.get_trials(deepcopy=False):
        key = t.user_attrs.get("key")
        if key is not None:
            per = counts.setdefault(key, {})
            per[t.state.name] = per.get(t.state.name, 0) + 1
    return counts


def work(plan: StudyPlan, cfg: WorkerConfig, echo: Callable[[str], None] = print) -> int:
    """Take and run waiting items until none is waiting or running; how many this worker ran."""
    import optuna
    from optuna.trial import TrialState

    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(cfg.storage, cfg.heartbeat_s, cfg.grace_s, cfg.max_retry)
    try:
        study = optuna.load_study(study_name=study_name(plan), storage=storage)
    except KeyError:
        raise DlabError(f"no study {study_name(plan)!r} in {_safe(cfg.storage)}: run "
                        f"`dlab study enqueue {plan.study.name} --storage URL` once first") from None
    by_key, ran = plan.by_key(), [0]
    me = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial: optuna.Trial) -> float:
        key = trial.user_attrs.get("key")
        if key is None:  # the queue emptied between our look and optuna's ask
            raise optuna.TrialPruned("no waiting work item")
        if key not in by_key:
            raise DlabError(f"work item {key} is not in this study's plan (the study file "
                            "changed after enqueueing?)")
        trial.set_user_attr("worker", me)
        item = by_key[key]
        if item.depends_on:
            _wait_for(by_key[item.depends_on].run_dir, item.depends_on, study, cfg.poll_s)
        echo(f"[{me}] start {summary_line(item, None)}")
        result = execute_item(item, data_dir=cfg.data_dir, device=cfg.device)
        ran[0] += 1
        echo(f"[{me}] done  {summary_line(item, result)}")
        value = result.get("best_val_acc", result.get("val_acc"))
        return float(value) if isinstance(value, (int, float)) else float("nan")

    while True:
        optuna.storages.fail_stale_trials(study)
        states = [t.state for t in study.get_trials(deepcopy=False)
                  if t.user_attrs.get("key") is not None]
        if TrialState.WAITING in states:
            try:
                study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=False)
            except KeyboardInterrupt:
                _requeue_mine(study, storage, me)
                raise
        elif TrialState.RUNNING in states:
            time.sleep(cfg.poll_s)  # others may still die and leave a retry behind
        else:
            return ran[0]


def _requeue_mine(study: Any, storage: Any, me: str) -> None:
    """Ctrl-C made optuna fail this worker's trial; queue it again (optuna's retry callback)."""
    from optuna.trial import TrialState

    retry = storage.get_heartbeat_stale_trial_callback()
    for trial in study.get_trials(deepcopy=True, states=(TrialState.FAIL, TrialState.RUNNING)):
        if trial.user_attrs.get("worker") == me and trial.user_attrs.get("requeued") is None:
            if trial.state == TrialState.RUNNING:
                storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            storage.set_trial_user_attr(trial._trial_id, "requeued", True)
            retry(study, trial)


def _wait_for(run_dir: Path, key: str, study: Any, poll_s: float) -> None:
    """Block until the item `key` is done; fail if nothing will ever finish it."""
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    while read_result(run_dir) is None:
        fail_stale_trials(study)
        live = [t for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,
                                                                     TrialState.RUNNING))
                if t.user_attrs.get("key") == key]
        if not live:
            raise DlabError(f"work item {key} failed for good; its dependents cannot run")
        time.sleep(poll_s)
