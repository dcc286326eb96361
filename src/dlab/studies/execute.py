"""Run one work item of a study plan in this process: train (any task), evaluate or fine-tune.

Training goes through the item's task (`dlab.tasks.run_task`: the shared trainer, or the task's
own loop), which holds the run lock, returns an existing result at once and resumes from
`checkpoints/last` (a classification item with a shorter twin starts from the twin's last
checkpoint). An eval step (classification only) evaluates its source's best checkpoint on
another dataset and writes a result of kind "eval" under the same lock. Imports torch only
when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from dlab.errors import DlabError
from dlab.results import is_done, make_result, metric, read_result, write_result
from dlab.runs import check_run, run_lock, start_run
from dlab.studies.plan import PlannedRun
from dlab.tasks import DEFAULT_TASK, RunContext, epoch_hook, get_task, run_task


def execute_item(item: PlannedRun, *, data_dir: str | Path | None = None, device: str = "auto",
                 on_epoch: Callable[[dict[str, Any]], Any] | None = None) -> dict[str, Any]:
    """Bring one item to done (or return its existing result); its result. A run directory
    with an unreadable file gives its "damaged" result (`dlab.runs.check_run`) and is not
    trained over."""
    done = check_run(item.run_dir) if item.run_dir.is_dir() else None
    if done is not None:
        return done
    done = read_result(item.run_dir)
    if is_done(done):
        return done
    if item.source_dir is not None and not is_done(read_result(item.source_dir)):
        raise DlabError(f"{item.kind} step {item.key} needs the finished run {item.depends_on} "
                        f"({item.source_dir}), which has no result.json yet")
    if item.kind in ("eval", "finetune"):
        source = read_result(item.source_dir)
        if source["status"] != "finished" and not (item.checkpoint.parent / "best.json").exists():
            raise DlabError(f"{item.kind} step {item.key}: its source {item.depends_on} "
                            f"{source['status']} before its first checkpoint, so there is no "
                            "model to start from")
    if item.kind == "eval":
        return _evaluate(item, data_dir, device)
    callbacks = (epoch_hook(on_epoch),) if on_epoch is not None else ()
    ctx = RunContext(item.run_dir, None if data_dir is None else str(data_dir), device,
                     progress=False, callbacks=callbacks)
    return run_task(get_task(item.task), item.config, ctx, continue_from=item.continues)


def _evaluate(item: PlannedRun, data_dir, device: str) -> dict[str, Any]:
    from dlab.torch_engine.evaluate import evaluate_checkpoint

    item.run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(item.run_dir):
        done = read_result(item.run_dir)
        if done is not None:
            return done
        start_run(item.run_dir, item.config.to_dict(), {"kind": "eval", "task": DEFAULT_TASK})
        out = evaluate_checkpoint(item.checkpoint, item.dataset, data_dir=data_dir, device=device)
        result = make_result(
            task=DEFAULT_TASK, kind="eval", status="finished", primary="val_acc",
            direction="max", final={"val_acc": out["val_acc"], "val_loss": out["val_loss"]},
            info={"n": out["n"], "dataset": item.dataset, "source": item.depends_on,
                  "source_dir": str(item.source_dir)})
        return write_result(item.run_dir, result)


def summary_line(item: PlannedRun, result: dict[str, Any] | None) -> str:
    """`<key> <kind> <q/label, ...>: <status> val_acc 0.8207` for progress output."""
    uses = ", ".join(f"{q}/{label}" for q, label in item.uses)
    if result is None:
        return f"{item.key} {item.kind:8s} {uses}"
    name = result["primary"]["name"]
    value = metric(result, name)
    shown = f" {name} {value:.4f}" if value is not None else ""
    if result["status"] == "damaged":
        shown = f" ({result['damaged']})"
    return f"{item.key} {item.kind:8s} {uses}: {result['status']}{shown}"
