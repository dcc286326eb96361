"""The task registry: every module or package under `dlab/tasks/` that defines `TASK`.

A new kind of training is one new module here (see `dlab.tasks.base` for what it declares);
nothing else lists tasks. Task modules must not import torch at module level, so the planner,
reports and `dlab runs` can read task facts without it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from dlab.errors import DlabError
from dlab.plugins import discover, lookup
from dlab.tasks.base import (Callback, Column, FitState, OpenContext, RunContext, Session, Task,
                             epoch_hook)

DEFAULT_TASK = "classification"


@lru_cache(maxsize=None)
def tasks() -> dict[str, Task]:
    """Every task, by name, discovered from the modules of this package."""
    return dict(sorted(discover(__name__, __path__, "TASK", Task).items()))


def get_task(name: str) -> Task:
    """The task called `name`; an unknown name is a one-line error listing the known ones."""
    return lookup(tasks(), name, "task")


def resolve_config(task: str, data: dict[str, Any] | None) -> Any:
    """A validated config of `task` from plain data."""
    return get_task(task).resolve(dict(data or {}))


def resolve_any(data: dict[str, Any] | None) -> tuple[Task, Any]:
    """(task, validated config) from plain data whose optional top-level `task` key names the
    task (default: classification), as study files and search spaces write it."""
    data = dict(data or {})
    name = data.pop("task", DEFAULT_TASK)
    if not isinstance(name, str):
        raise DlabError(f"task = {name!r}: expected a task name, one of: "
                        + ", ".join(sorted(tasks())))
    task = get_task(name)
    return task, task.resolve(data)


def task_of(cfg: Any) -> Task:
    """The task whose config class `cfg` is an instance of."""
    for task in tasks().values():
        if isinstance(cfg, task.config_class):
            return task
    raise DlabError(f"no task has config type {type(cfg).__name__}")


def run_task(task: Task, cfg: Any, ctx: RunContext, continue_from=None) -> dict[str, Any]:
    """Bring one run of `task` to done in `ctx.run_dir` (or return its existing result): the
    shared trainer for session tasks, the task's own `run` otherwise."""
    if task.run is not None:
        try:
            ctx.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DlabError(f"cannot create run directory {str(ctx.run_dir)!r}: "
                            f"{exc.strerror or exc}") from None
        return task.run(cfg, ctx)
    from dlab.torch_engine.trainer import fit

    return fit(task, cfg, ctx.run_dir, data_dir=ctx.data_dir, device=ctx.device,
               progress=ctx.progress, callbacks=ctx.callbacks, continue_from=continue_from)


__all__ = ["Callback", "Column", "DEFAULT_TASK", "FitState", "OpenContext", "RunContext", "Session", "Task",
           "epoch_hook", "get_task", "resolve_any", "resolve_config", "run_task", "task_of", "tasks"]
