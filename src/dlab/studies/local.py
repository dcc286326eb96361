"""Run a study plan on this machine with N worker processes, in dependency order.

Each work item runs in its own child process (`dlab.studies.runner.run_in_child`, forked from
a fork server that has torch and the engine imported already), so a crashing item cannot take
the others down and torch's thread count is set per child (`item_threads`: C // N threads each
with N workers on C cores for models whose results do not depend on the thread count, all C
cores for the others, so that no item's metrics depend on --workers). Children die with the
fork server, and the server with this process (Linux PR_SET_PDEATHSIG), so a killed `dlab study run` leaves no orphan holding a run lock; the
rerun skips finished items and resumes interrupted ones from their checkpoints. Ctrl-C forwards
SIGINT to the children, waits for them to stop, and leaves finished runs untouched.
Child logs go to `<study root>/logs/<key>.log`. Must not import torch.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from dlab.errors import DlabError
from dlab.results import is_done, read_result
from dlab.runs import check_run
from dlab.studies.execute import summary_line
from dlab.studies.plan import PlannedRun, StudyPlan

@dataclass(frozen=True)
class LocalConfig:
    """How the local pool runs."""

    workers: int = 1
    threads: int = 0  # torch threads per item; 0: `item_threads` decides
    data_dir: str | None = None
    device: str = "auto"
    poll_s: float = 0.2


@dataclass
class LocalResult:
    """What one `run_plan` call did."""

    ran: list[str] = field(default_factory=list)  # keys executed by this call (finished now)
    skipped: list[str] = field(default_factory=list)  # already done before this call
    failed: dict[str, str] = field(default_factory=dict)  # key -> reason (incl. blocked steps)
    wall_s: float = 0.0


@dataclass
class _Child:
    item: PlannedRun
    proc: multiprocessing.process.BaseProcess
    started: float
    threads: int = 1

    def exitcode(self) -> int | None:
        """None while running; the exit status (negative: killed by that signal)."""
        return self.proc.exitcode


def _fork_server():
    """The multiprocessing context whose fork server preloads torch and the engine, once."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["dlab.studies.warm", "dlab.studies.server"])
    return ctx


def _start(item: PlannedRun, cfg: LocalConfig, threads: int, logs: Path) -> _Child:
    from dlab.studies.runner import run_in_child

    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{item.key}.log"
    open(log, "a").close()  # a read-only or full place fails here, in the pool, as one line
    job = {"item": item.to_json(), "data_dir": cfg.data_dir, "device": cfg.device,
           "threads": threads}
    proc = _fork_server().Process(target=run_in_child, args=(job, str(log)),
                                  name=f"dlab-{item.key}")
    proc.start()
    return _Child(item, proc, time.perf_counter(), threads)


def item_threads(item: PlannedRun, cfg: LocalConfig) -> int:
    """Torch threads for one item: `--threads` when given; else the cores shared among the
    workers when the item's results do not depend on the thread count (models whose
    `thread_invariant` holds), and all cores otherwise — so an item's metrics are the same with
    any `--workers` (its thread count is not part of its key, and must not change its result).
    """
    if cfg.threads:
        return cfg.threads
    cores = os.cpu_count() or 1
    model = getattr(item.config, "model", None)
    if item.task == "classification" and model is not None:
        from dlab.models import get_model

        if get_model(model.name).thread_invariant(model):
            return max(1, cores // cfg.workers)
    return cores


def _next_fitting(ready: list[PlannedRun], running: list[_Child],
                  cfg: LocalConfig) -> PlannedRun | None:
    """The first of `ready` whose threads fit beside the running items' within the cores (an
    item that takes all cores runs alone: two of them on the same cores ran 4-15x slower), or
    None. With `--threads` (or a study file's `threads`) the user's count is taken as is."""
    if cfg.threads or not running:
        return ready[0] if ready else None
    free = (os.cpu_count() or 1) - sum(c.threads for c in running)
    return next((item for item in ready if item_threads(item, cfg) <= free), None)


def _cost(item: PlannedRun, needed: set[str]) -> float:
    """A rough relative cost, to start long items first (shorter tail with N workers).

    Items others depend on go first of all. Per epoch: compute grows with the net's width
    squared, and per-step overhead with the number of steps (small batches).
    """
    if item.kind == "eval":
        return 0.0
    t, m = getattr(item.config, "train", None), getattr(item.config, "model", None)
    if t is None or not hasattr(t, "epochs"):
        cost = 1.0
    else:
        width = getattr(m, "width", 2.0) if getattr(m, "name", "") == "net" else 4.0
        cost = t.epochs * width ** 2 * (1.0 + 64.0 / getattr(t, "batch_size", 64))
    return cost + (1e9 if item.key in needed else 0.0)


def _last_error(path: Path) -> str:
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []
    return lines[-1] if lines else "no output"


def run_plan(plan: StudyPlan, cfg: LocalConfig,
             echo: Callable[[str], None] = print) -> LocalResult:
    """Bring every item of `plan` to done with `cfg.workers` processes; returns what happened."""
    if cfg.workers < 1:
        raise DlabError(f"--workers {cfg.workers}: expected >= 1")
    t0 = time.perf_counter()
    out = LocalResult()
    pending = []
    for item in plan.runs:
        bad = check_run(item.run_dir) if item.run_dir.is_dir() else None
        if bad is not None:  # never trained over: its dependents fail too
            out.failed[item.key] = f"damaged: {bad['damaged']}"
            echo(f"[fail] {summary_line(item, None)}: damaged: {bad['damaged']}")
        elif is_done(read_result(item.run_dir)):
            out.skipped.append(item.key)
        else:
            pending.append(item)
    done = set(out.skipped)
    total, running = len(pending), []
    needed = {p.depends_on for p in pending if p.depends_on}
    logs = plan.root / "logs"
    try:
        while pending or running:
            for item in [p for p in pending if p.depends_on in out.failed]:
                pending.remove(item)
                out.failed[item.key] = f"its source {item.depends_on} failed"
                echo(f"[skip] {summary_line(item, None)}: source {item.depends_on} failed")
            ready = sorted((p for p in pending if p.depends_on is None or p.depends_on in done),
                           key=lambda p: -_cost(p, needed))
            while ready and len(running) < cfg.workers:
                item = _next_fitting(ready, running, cfg)
                if item is None:
                    break
                ready.remove(item)
                pending.remove(item)
                running.append(_start(item, cfg, item_threads(item, cfg), logs))
                echo(f"[start] {summary_line(item, None)}")
            time.sleep(cfg.poll_s)
            for child in [c for c in running if c.exitcode() is not None]:
                running.remove(child)
                _finish(child, out, done, total, echo, logs)
    except KeyboardInterrupt:
        _stop(running)
        raise
    out.wall_s = time.perf_counter() - t0
    return out


def _finish(child: _Child, out: LocalResult, done: set, total: int,
            echo: Callable[[str], None], logs: Path) -> None:
    item, seconds = child.item, time.perf_counter() - child.started
    result = read_result(item.run_dir)
    if child.exitcode() == 0 and is_done(result):
        done.add(item.key)
        out.ran.append(item.key)
        echo(f"[{len(out.ran)}/{total}] {summary_line(item, result)} ({seconds:.0f} s)")
    else:
        bad = check_run(item.run_dir) if item.run_dir.is_dir() else None
        reason = f"damaged: {bad['damaged']}" if bad is not None else \
            _last_error(logs / f"{item.key}.log")
        out.failed[item.key] = f"exit {child.exitcode()}: {reason}"
        echo(f"[fail] {summary_line(item, None)}: {reason}")


def _stop(running: list[_Child], wait_s: float = 30.0) -> None:
    """Forward Ctrl-C to the children, give them time to stop cleanly, then kill."""
    for child in running:
        if child.exitcode() is None:
            os.kill(child.proc.pid, signal.SIGINT)
    deadline = time.monotonic() + wait_s
    for child in running:
        child.proc.join(timeout=max(0.1, deadline - time.monotonic()))
        if child.exitcode() is None:
            child.proc.kill()
            child.proc.join()
