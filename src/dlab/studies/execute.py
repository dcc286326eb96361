"""Run one work item of a study plan in this process: train, evaluate or fine-tune.

Training and fine-tuning go through `dlab.torch_engine.train.train_run`, which holds the run
lock, returns an existing result.json at once and resumes from `checkpoints/last` (a train item
with a shorter twin starts from the twin's last checkpoint). An eval step
writes `result.json` = {"status": "finished", "kind": "eval", "val_acc", "val_loss", "n",
"dataset", "source", "source_dir"} under the same lock. Imports torch only when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from dlab.errors import DlabError
from dlab.runs import CONFIG, MANIFEST, RESULT, atomic_write_json, manifest, read_result, run_lock
from dlab.studies.plan import PlannedRun


def execute_item(item: PlannedRun, *, data_dir: str | Path | None = None, device: str = "auto",
                 on_epoch: Callable[[dict[str, Any]], Any] | None = None) -> dict[str, Any]:
    """Bring one item to done (or return its existing result); its result.json contents."""
    done = read_result(item.run_dir)
    if done is not None:
        return done
    if item.source_dir is not None and read_result(item.source_dir) is None:
        raise DlabError(f"{item.kind} step {item.key} needs the finished run {item.depends_on} "
                        f"({item.source_dir}), which has no result.json yet")
    if item.kind == "eval":
        return _evaluate(item, data_dir, device)
    from dlab.torch_engine.train import train_run

    return train_run(item.config, item.run_dir, data_dir=data_dir, device=device,
                     progress=False, on_epoch=on_epoch, continue_from=item.continues)


def _evaluate(item: PlannedRun, data_dir, device: str) -> dict[str, Any]:
    from dlab.torch_engine.evaluate import evaluate_checkpoint

    item.run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(item.run_dir):
        done = read_result(item.run_dir)
        if done is not None:
            return done
        atomic_write_json(item.run_dir / CONFIG, item.config.to_dict())
        atomic_write_json(item.run_dir / MANIFEST, manifest({"kind": "eval"}))
        out = evaluate_checkpoint(item.checkpoint, item.dataset, data_dir=data_dir, device=device)
        result = {"status": "finished", "kind": "eval", "val_acc": out["val_acc"],
                  "val_loss": out["val_loss"], "n": out["n"], "dataset": item.dataset,
                  "source": item.depends_on, "source_dir": str(item.source_dir)}
        atomic_write_json(item.run_dir / RESULT, result)
    return result


def summary_line(item: PlannedRun, result: dict[str, Any] | None) -> str:
    """`<key> <kind> <q/label, ...>: <status> val_acc 0.8207` for progress output."""
    uses = ", ".join(f"{q}/{label}" for q, label in item.uses)
    if result is None:
        return f"{item.key} {item.kind:8s} {uses}"
    acc = result.get("val_acc", result.get("final_val_acc"))
    acc_text = f" val_acc {acc:.4f}" if isinstance(acc, (int, float)) else ""
    return f"{item.key} {item.kind:8s} {uses}: {result.get('status', 'finished')}{acc_text}"
