"""A tiny study and synthetic run directories in the torch engine's on-disk format.

The run directories are written where `plan_study` puts them (`<root>/<study>/<key>/`) with the
engine's files: config.json, metrics.jsonl rows {"epoch", "loss", "acc", "val_loss", "val_acc",
"lr", "time_s", "params"} and result.json. No torch, no training: report tests stay fast.
"""

from __future__ import annotations

import json
from pathlib import Path

from dlab.studies import load_study, plan_study

STUDY_TOML = """
name = "tiny"
description = "A two-question study for the report tests."
[base]
data.dataset = "fashion-mnist"
train.epochs = 3

[[questions]]
key = "q1"
title = "Learning rate"
text = "Change the learning rate; what happens?"
explanation = "SGD steps w <- w - lr * grad L(w). Too small: slow; too large: divergence."
[[questions.variants]]
label = "lr-small"
set = { "optim.lr" = 0.001 }
reference = 70.5
[[questions.variants]]
label = "lr-default"
[[questions.variants]]
label = "lr-huge"
set = { "optim.lr" = 10.0 }
[[questions.variants]]
label = "lr-mid"
set = { "optim.lr" = 0.05 }

[[questions]]
key = "q2"
title = "Transfer"
text = "Evaluate the default model on MNIST unchanged."
explanation = "The weights are kept; only the input distribution changes."
[[questions.variants]]
label = "default"
[[questions.variants]]
label = "on-mnist"
kind = "eval"
source = "q1/lr-default"
dataset = "mnist"
"""

# label -> per-epoch val accuracies (fractions); lr-mid is deliberately never run
CURVES = {"lr-small": [0.50, 0.60, 0.705], "lr-default": [0.70, 0.78, 0.8123],
          "lr-huge": [0.10, float("nan")]}


def write_study(folder: Path) -> Path:
    path = Path(folder) / "tiny.toml"
    path.write_text(STUDY_TOML)
    return path


def _write_train_run(run_dir: Path, config: dict, accs: list[float], params: int) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(config))
    rows = []
    for epoch, acc in enumerate(accs, start=1):
        loss = float("nan") if acc != acc else 2.0 / epoch
        rows.append({"epoch": epoch, "loss": loss, "acc": acc, "val_loss": loss * 1.1,
                     "val_acc": acc, "lr": 0.01, "time_s": 1.5 + epoch, "params": params})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    finite = [a for a in accs if a == a]
    diverged = len(finite) < len(accs)
    result = {"status": "diverged" if diverged else "finished", "epochs_completed": len(accs),
              "final_val_acc": accs[-1], "best_val_acc": max(finite),
              "best_epoch": accs.index(max(finite)) + 1, "final_val_loss": rows[-1]["val_loss"],
              "seconds_per_epoch": sum(r["time_s"] for r in rows) / len(rows), "params": params,
              "time_s": 9.0, "config_hash": "x", "dataset": config["data"]["dataset"]}
    (run_dir / "result.json").write_text(json.dumps(result))


def write_runs(study_path: Path, runs_root: Path) -> dict[str, Path]:
    """Write the synthetic runs of the tiny study; returns label -> run directory."""
    plan = plan_study(load_study(study_path), runs_root)
    dirs = {}
    for label, accs in CURVES.items():
        (item,) = plan.lookup("q1", label)
        _write_train_run(item.run_dir, item.config.to_dict(), accs, params=21840)
        dirs[label] = item.run_dir
    (step,) = plan.lookup("q2", "on-mnist")
    step.run_dir.mkdir(parents=True)
    (step.run_dir / "result.json").write_text(json.dumps(
        {"status": "finished", "val_acc": 0.099, "val_loss": 5.25, "n": 10000,
         "dataset": "mnist"}))
    dirs["on-mnist"] = step.run_dir
    return dirs
