"""Workers on many machines sharing one database (PostgreSQL; SQLite on one machine) as the
work queue of a study (`dlab.studies.queue`, scope `dlab-study:<name>`).

`enqueue_plan` adds one queue row per work item, in the plan's dependency order; the row's
primary key makes a repeated or concurrent enqueue add nothing. Each `work` process re-plans
the study locally (keys do not depend on the machine) and loops: take back items of workers
whose heartbeat is older than the grace period, then claim the first waiting item whose
source (eval/finetune/continued twin) is done — never one whose source is not, so no worker
ever holds an item while it waits, and a lone worker finishes a study its peers died in. An
item whose source failed for good fails too. Ctrl-C or SIGTERM hands the held item back
(waiting again; the next worker resumes it from its checkpoint) and re-raises. The run
directories must be on storage every worker sees (or each machine keeps its own, and
eval/finetune steps need their source's checkpoint there). Imports torch only when called.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from dlab.errors import DlabError
from dlab.results import is_done, primary_value, read_result
from dlab.runs import is_locked
from dlab.studies.execute import execute_item, summary_line
from dlab.studies.plan import StudyPlan
from dlab.studies.queue import DONE, FAILED, RUNNING, WAITING, Queue, safe_url, with_driver

__all__ = ["WorkerConfig", "WorkOutcome", "enqueue_plan", "trial_counts", "work", "with_driver"]


@dataclass(frozen=True)
class WorkerConfig:
    """How one distributed worker runs."""

    storage: str
    data_dir: str | None = None
    device: str = "auto"
    heartbeat_s: int = 10
    grace_s: int = 30  # an item whose heartbeat is older than this is taken back and retried
    max_retry: int = 3  # how often an item may lose its worker before it fails for good
    poll_s: float = 1.0
    threads: int = 0  # torch threads in this worker; 0 = torch's default

    def __post_init__(self) -> None:
        for name, value, low in (("--heartbeat", self.heartbeat_s, 1), ("--grace", self.grace_s, 1),
                                 ("--threads", self.threads, 0), ("max_retry", self.max_retry, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise DlabError(f"{name} {value!r}: expected an integer >= {low}")
        if self.grace_s <= self.heartbeat_s:
            raise DlabError(f"--grace {self.grace_s}: expected more than --heartbeat "
                            f"{self.heartbeat_s} (else a live worker looks dead)")
        if not self.poll_s > 0:
            raise DlabError(f"--poll {self.poll_s!r}: expected seconds > 0")


@dataclass
class WorkOutcome:
    """What one worker did, and the queue's state when it stopped."""

    ran: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # every failed item of the queue: why
    states: dict[str, int] = field(default_factory=dict)  # queue state -> items


def study_name(plan: StudyPlan) -> str:
    return f"dlab-study:{plan.study.name}"


def enqueue_plan(plan: StudyPlan, url: str) -> tuple[int, int]:
    """Queue the plan's items not yet queued (by anyone): (added, already present)."""
    queue = Queue(url, study_name(plan))
    added = sum(queue.add(item.key, item.kind, item.depends_on) for item in plan.runs)
    return added, len(queue.rows()) - added


def trial_counts(plan: StudyPlan, url: str) -> dict[str, dict[str, int]]:
    """Per item key: its queue state, as {STATE: 1} (WAITING, RUNNING, DONE, FAILED)."""
    rows = _load(plan, url).rows()
    return {r["key"]: {r["state"].upper(): 1} for r in rows}


def _load(plan: StudyPlan, url: str) -> Queue:
    queue = Queue(url, study_name(plan))
    if not queue.rows():
        raise DlabError(f"no study {study_name(plan)!r} in {safe_url(url)}: run "
                        f"`dlab study enqueue {plan.study.name} --storage URL` once first")
    return queue


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def work(plan: StudyPlan, cfg: WorkerConfig, echo: Callable[[str], None] = print) -> WorkOutcome:
    """Claim and run items until none is waiting or running. On KeyboardInterrupt the held item
    is handed back to the queue before the interrupt propagates."""
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    queue, by_key, me = _load(plan, cfg.storage), plan.by_key(), worker_id()
    unknown = [r["key"] for r in queue.rows() if r["key"] not in by_key]
    if unknown:
        raise DlabError(f"work items {', '.join(unknown[:3])} are not in this study's plan "
                        "(the study file changed after enqueueing?)")
    out, held, idle = WorkOutcome(), [None], False
    try:
        while True:
            queue.reclaim(cfg.grace_s, cfg.max_retry)
            rows = queue.rows()
            key = _claim_next(queue, rows, by_key, me, held)
            if key is not None:
                busy = not _run_one(queue, by_key[key], cfg, me, out, echo)
                held[0] = None
                if busy:
                    time.sleep(cfg.poll_s)
                idle = False
            elif any(r["state"] in (WAITING, RUNNING) for r in rows):
                if not idle:
                    echo(f"[{me}] waiting: no item is ready (their sources are still running)")
                idle = True
                time.sleep(cfg.poll_s)  # sources still training elsewhere, or a worker may die
                continue
            else:
                break
    except KeyboardInterrupt:
        if held[0] is not None:
            _ignore_signals()  # a second Ctrl-C must not stop the hand-back
            queue.release(held[0], me)
            echo(f"[{me}] interrupted: handed {held[0]} back to the queue")
        raise
    rows = queue.rows()
    for r in rows:
        out.states[r["state"]] = out.states.get(r["state"], 0) + 1
    out.failed = {r["key"]: r["error"] or "failed" for r in rows if r["state"] == FAILED}
    return out


def _claim_next(queue: Queue, rows: list[dict[str, Any]], by_key: dict, me: str,
                held: list) -> str | None:
    """The first waiting item whose source is done, now claimed by this worker; items whose
    source failed for good are failed on the way."""
    state = {r["key"]: r for r in rows}
    for r in rows:
        if r["state"] != WAITING:
            continue
        source = r["source"]
        if source is not None:
            src = state.get(source)
            if src is None:  # not queued (an older enqueue): only a local result tells
                src = {"state": DONE if is_done(read_result(by_key[r["key"]].source_dir))
                       else FAILED, "key": source}
            if src["state"] == FAILED:
                queue.finish(r["key"], FAILED, error=f"its source {source} failed",
                             expect=(WAITING,))
                continue
            if src["state"] != DONE:
                continue
        held[0] = r["key"]  # before the claim: an interrupt right after it still hands back
        if queue.claim(r["key"], me):
            return r["key"]
        held[0] = None
    return None


def _run_one(queue: Queue, item: Any, cfg: WorkerConfig, me: str, out: WorkOutcome,
             echo: Callable[[str], None]) -> bool:
    """Run the claimed `item` and record how it ended; False when its run directory is still
    locked by a worker that was taken for dead (the item is handed back to wait for it)."""
    if is_locked(item.run_dir):
        queue.release(item.key, me)
        return False

    def log_epoch(row: dict[str, Any]) -> None:
        echo(f"[{me}] epoch {row.get('epoch')} of {item.key}")

    echo(f"[{me}] start {summary_line(item, None)}")
    with queue.holding(item.key, me, cfg.heartbeat_s):
        try:
            result = execute_item(item, data_dir=cfg.data_dir, device=cfg.device,
                                  on_epoch=log_epoch)
        except Exception as exc:  # recorded; the worker goes on with other items
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            queue.finish(item.key, FAILED, error=why, expect=(RUNNING, WAITING))
            echo(f"[{me}] failed {item.key}: {why}")
            return True
    if is_done(result):
        queue.finish(item.key, DONE, status=result["status"], value=primary_value(result),
                     expect=(RUNNING, WAITING))
    else:
        why = result.get("damaged") or f"status {result.get('status')}"
        queue.finish(item.key, FAILED, error=why, expect=(RUNNING, WAITING))
    out.ran.append(item.key)
    echo(f"[{me}] done  {summary_line(item, result)}")
    return True


def _ignore_signals() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
