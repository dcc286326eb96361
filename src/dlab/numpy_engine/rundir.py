"""The numpy engine's runs on the one run lifecycle (`dlab.runs` + `dlab.results`).

A numpy run (the MNIST MLP, the CIFAR-10 convnet) is brought to done in a given run directory:
under the directory's lock, a finished result is returned as it is; otherwise config.json and
manifest.json are written (or, when resuming, checked against the config), the solver trains
from `checkpoints/last.npz` if there is one, and `result.json` is written last through
`dlab.results`. A loss that becomes non-finite ends the run with status "diverged" (no figures:
the weights are NaN). Must not import torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from dlab.config import from_dict
from dlab.errors import DlabError
from dlab.results import make_result, write_result
from dlab.runs import CONFIG, METRICS, read_json, start_run, truncate_jsonl

CHECKPOINT = Path("checkpoints") / "last.npz"


def start_or_check(run_dir: Path, cfg: Any, task: str) -> bool:
    """Write a fresh run's config and manifest, or check a resumed run's config; True: resumed.

    A run directory that already holds another config is a one-line error (its key differs).
    """
    path = Path(run_dir) / CONFIG
    if path.exists():
        held = from_dict(type(cfg), read_json(path), where=str(path))
        if held.hash() != cfg.hash():
            raise DlabError(f"run directory {str(run_dir)!r} holds another {task} config "
                            f"(key {held.hash()}); expected key {cfg.hash()}")
        return True
    start_run(Path(run_dir), cfg.to_dict(), {"engine": "numpy", "task": task,
                                             "config_hash": cfg.hash()})
    return False


def resume_solver(run_dir: Path, solver, log: Callable[[str], None]) -> None:
    """Continue `solver` from the run's last checkpoint, if any; metrics rows past it go."""
    ckpt = Path(run_dir) / CHECKPOINT
    if ckpt.exists():
        solver.load(ckpt)
        truncate_jsonl(Path(run_dir) / METRICS, solver.epoch)
        log(f"resumed {run_dir} at epoch {solver.epoch}")


def train_or_diverge(solver, run_dir: Path) -> str | None:
    """Train to the end, checkpointing each epoch; the divergence message, or None."""
    try:
        solver.train(checkpoint=Path(run_dir) / CHECKPOINT)
    except FloatingPointError as exc:
        return str(exc)
    return None


def write_numpy_result(run_dir: Path, cfg: Any, task: str, solver, *, diverged: str | None,
                       params: int | None = None,
                       info: dict[str, Any]) -> dict[str, Any]:
    """result.json of a numpy run from the solver's per-epoch history (primary: val_acc, max).

    Final metrics are the last epoch's (all None when the run diverged); best ones are at the
    epoch of the highest val_acc.
    """
    h = solver.history
    last = {"val_acc": None, "val_loss": None, "train_acc": None, "train_loss": None}
    if not diverged and h["val_acc"]:
        last = {"val_acc": h["val_acc"][-1], "val_loss": h["val_loss"][-1],
                "train_acc": h["train_acc"][-1], "train_loss": h["train_loss"][-1]}
    best, best_epoch = None, None
    if h["val_acc"]:
        i = max(range(len(h["val_acc"])), key=lambda j: h["val_acc"][j])
        best = {"val_acc": h["val_acc"][i], "val_loss": h["val_loss"][i],
                "train_acc": h["train_acc"][i], "train_loss": h["train_loss"][i]}
        best_epoch = i + 1
    time_s = float(sum(h["epoch_time_s"]))
    if diverged:
        info = {**info, "diverged": diverged}
    return write_result(run_dir, make_result(
        task=task, status="diverged" if diverged else "finished", primary="val_acc",
        direction="max", final=last, best=best or last, best_epoch=best_epoch, params=params,
        time_s=time_s, epochs_completed=solver.epoch,
        seconds_per_epoch=time_s / solver.epoch if solver.epoch else None,
        config_hash=cfg.hash(), info=info))
