"""The one result schema of every run, its one writer, and reading (with upgrade) of old results.

Every producer — classifier training, eval and finetune steps, the numpy engine, the analysis
experiments, GANs, captioning — ends a run with `write_result(run_dir, make_result(...))`. The
file is written last and atomically: its presence means the run is done. Schema 2::

    {"schema": 2, "task": "classification", "kind": "train", "status": "finished",
     "primary": {"name": "val_acc", "direction": "max"},
     "final": {"val_acc": 0.82, "val_loss": 0.5, ...},   # the run's final metrics
     "best": {"val_acc": 0.83, ...}, "best_epoch": 9,     # at the best epoch by the primary
     "params": 21840, "time_s": 41.0, "seconds_per_epoch": 4.1, "epochs_completed": 10,
     "config_hash": "…", "info": {...}}                   # task-specific facts (dataset, …)

status is one of `STATUSES`. Results written before schema 2 (dlab ≤ 0.1: five shapes, one
per producer) are upgraded when read, so no finished run is lost by upgrading. A result.json
that cannot be read is reported as status "damaged" with the file and the reason, never raised:
one damaged run must not stop a listing, a study or a report. Must not import torch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from dlab.errors import DlabError
from dlab.io import atomic_write_json

RESULT = "result.json"
SCHEMA = 2
STATUSES = ("finished", "diverged", "failed", "pruned")
DONE = ("finished", "diverged", "pruned")  # a run in these states is not run again
DIRECTIONS = ("max", "min")


def _clean(value: Any) -> Any:
    """JSON-safe numbers: NaN/inf become None (a diverged run's losses)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def make_result(*, task: str, status: str, primary: str, direction: str,
                final: dict[str, Any], best: dict[str, Any] | None = None,
                best_epoch: int | None = None, params: int | None = None,
                time_s: float | None = None, epochs_completed: int | None = None,
                seconds_per_epoch: float | None = None, config_hash: str | None = None,
                kind: str = "train", info: dict[str, Any] | None = None) -> dict[str, Any]:
    """A schema-2 result; every producer builds its result.json with this.

    Args:
        primary: the metric that ranks runs of this task (best checkpoint, tuning, reports).
        direction: "max" or "min": which way that metric is better.
        final: the metrics at the end of the run; best: at the best epoch (default: final).
    """
    if status not in STATUSES:
        raise DlabError(f"result status {status!r}; expected one of: " + ", ".join(STATUSES))
    if direction not in DIRECTIONS:
        raise DlabError(f"result direction {direction!r}; expected 'max' or 'min'")
    return _clean({
        "schema": SCHEMA, "task": task, "kind": kind, "status": status,
        "primary": {"name": primary, "direction": direction},
        "final": dict(final), "best": dict(final if best is None else best),
        "best_epoch": best_epoch, "params": params, "time_s": time_s,
        "seconds_per_epoch": seconds_per_epoch, "epochs_completed": epochs_completed,
        "config_hash": config_hash, "info": dict(info or {}),
    })


def write_result(run_dir: str | Path, result: dict[str, Any]) -> dict[str, Any]:
    """Write `result` (from `make_result`) as the run's result.json, atomically and last.

    The one writer of result.json in dlab.
    """
    if result.get("schema") != SCHEMA:
        raise DlabError("write_result expects a result built by dlab.results.make_result")
    atomic_write_json(Path(run_dir) / RESULT, result)
    return result


def reopen(run_dir: str | Path) -> None:
    """Remove a pruned run's result so that it continues from `checkpoints/last` (the caller
    holds the run lock). Only pruned runs are reopened: a finished run's result is kept."""
    result = read_result(run_dir)
    if result is None:
        return
    if result["status"] != "pruned":
        raise DlabError(f"run {str(run_dir)!r} is {result['status']}, not pruned: it is not "
                        "reopened")
    (Path(run_dir) / RESULT).unlink()


def read_result(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's result in schema 2 (older files upgraded), None when there is none yet; a file
    that cannot be read gives a "damaged" result naming it."""
    path = Path(run_dir) / RESULT
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        return damaged(path, str(getattr(exc, "strerror", None) or exc))
    try:
        data = json.loads(text)
    except ValueError:
        return damaged(path, "empty file" if not text.strip() else "not valid JSON")
    if not isinstance(data, dict):
        return damaged(path, "not a JSON object")
    try:
        return upgrade(data)
    except (KeyError, TypeError, ValueError) as exc:
        return damaged(path, f"unrecognised result ({exc})")


def damaged(path: Path, reason: str) -> dict[str, Any]:
    """The stand-in result of a run whose file `path` cannot be read."""
    return {"schema": SCHEMA, "task": "", "kind": "", "status": "damaged",
            "damaged": f"{path}: {reason}", "primary": {"name": "", "direction": "max"},
            "final": {}, "best": {}, "best_epoch": None, "params": None, "time_s": None,
            "seconds_per_epoch": None, "epochs_completed": None, "config_hash": None,
            "info": {}}


def is_done(result: dict[str, Any] | None) -> bool:
    """Whether a run with this result is complete (not to be run again)."""
    return result is not None and result.get("status") in DONE


def primary_value(result: dict[str, Any], which: str = "best") -> float | None:
    """The primary metric's value at the best epoch ("best") or at the end ("final")."""
    name = result.get("primary", {}).get("name", "")
    value = result.get(which, {}).get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


def metric(result: dict[str, Any], name: str, which: str = "final") -> float | None:
    """One metric of a result, None when absent or not a number."""
    value = result.get(which, {}).get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


# ---------------------------------------------------------------------------------------------
# Upgrade on read: the five result shapes of dlab 0.1


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 from any result.json dlab has written."""
    if data.get("schema") == SCHEMA:
        return data
    if data.get("kind") == "eval" or ("val_acc" in data and "final_val_acc" not in data
                                      and "engine" not in data):
        return _upgrade_eval(data)
    if data.get("engine") == "numpy":
        return _upgrade_numpy(data)
    if "experiment" in data or "experiments" in data:
        return _upgrade_analysis(data)
    return _upgrade_train(data)


def _upgrade_train(d: dict[str, Any]) -> dict[str, Any]:
    final = {"val_acc": d.get("final_val_acc"), "val_loss": d.get("final_val_loss")}
    if "final_single_view_acc" in d:
        final["single_view_val_acc"] = d["final_single_view_acc"]
    info = {k: d[k] for k in ("dataset", "model", "device", "tta") if k in d}
    if "fused_conv_pool_relu" in d:
        info["fused_conv_pool_relu"] = d["fused_conv_pool_relu"]
    return make_result(
        task="classification", status=d.get("status", "finished"), primary="val_acc",
        direction="max", final=final, best={"val_acc": d.get("best_val_acc")},
        best_epoch=d.get("best_epoch"), params=d.get("params"), time_s=d.get("time_s"),
        epochs_completed=d.get("epochs_completed"),
        seconds_per_epoch=d.get("seconds_per_epoch"), config_hash=d.get("config_hash"),
        info=info)


def _upgrade_eval(d: dict[str, Any]) -> dict[str, Any]:
    final = {"val_acc": d["val_acc"], "val_loss": d.get("val_loss")}
    info = {k: d[k] for k in ("n", "dataset", "source", "source_dir") if k in d}
    return make_result(task="classification", kind="eval", status=d.get("status", "finished"),
                       primary="val_acc", direction="max", final=final, info=info)


def _upgrade_numpy(d: dict[str, Any]) -> dict[str, Any]:
    if "final_test_acc" in d:  # the numpy MNIST MLP: its validation set is the test set
        final = {"val_acc": d["final_test_acc"], "train_acc": d.get("final_train_acc")}
        best = {"val_acc": d.get("best_test_acc")}
        task, params = "numpy-mlp", d.get("parameters")
    else:
        final = {"val_acc": d["final_val_acc"], "train_acc": d.get("final_train_acc_1000")}
        best, task, params = None, "numpy-convnet", None
    info = {k: v for k, v in d.items() if k not in ("status", "engine", "final_test_acc",
                                                    "best_test_acc", "final_val_acc",
                                                    "final_train_acc", "parameters",
                                                    "train_time_s", "epochs")}
    return make_result(task=task, status=d.get("status", "finished"), primary="val_acc",
                       direction="max", final=final, best=best, params=params,
                       time_s=d.get("train_time_s"), epochs_completed=d.get("epochs"),
                       info=info)


def _upgrade_analysis(d: dict[str, Any]) -> dict[str, Any]:
    if "experiments" in d:  # `dlab analyze all`: the folder of every experiment
        info = {"full": d.get("full"), "experiments": sorted(d["experiments"])}
        passed = sum(bool(r.get("verdict", {}).get("passed")) for r in d["experiments"].values())
        return make_result(task="analysis", kind="analysis-all", status=d.get("status", "finished"),
                           primary="passed", direction="max", final={"passed": passed},
                           time_s=d.get("time_s"), info=info)
    verdict = d.get("verdict", {})
    return make_result(task="analysis", kind="analysis", status=d.get("status", "finished"),
                       primary="passed", direction="max",
                       final={"passed": int(bool(verdict.get("passed")))}, time_s=d.get("time_s"),
                       info={"experiment": d["experiment"], "verdict": verdict,
                             "figures": d.get("figures", [])})
