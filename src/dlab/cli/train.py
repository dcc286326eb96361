"""`dlab train`, `dlab eval`, `dlab finetune`, `dlab predict`, `dlab runs`: the torch engine's commands."""

from __future__ import annotations

import argparse
import csv
import json
import os
import math
from pathlib import Path
from typing import Any

from dlab.cli.common import add_data_dir, add_device, add_runs_dir, runs_dir
from dlab.config import (SCHEDULES, RunConfig, dotted_to_nested, load_toml, merge, parse_set_args,
                         resolve)
from dlab.errors import DlabError
from dlab.models import models
from dlab.results import metric, primary_value, read_result
from dlab.runs import CONFIG, atomic_write_bytes, check_run, create_run_dir, is_locked, \
    list_runs, one_line_os_errors, read_json, remove_unstarted, timestamp

DEFAULT_LR_FACTOR = 0.05  # finetune: the checkpoint's lr x this (20x smaller)
FINETUNE_DATASET = "mnist"  # finetune's default target (the assignment's Fashion-MNIST -> MNIST)

# Convenience flags and the config keys they set.
FLAG_KEYS = {
    "dataset": "data.dataset", "model": "model.name", "epochs": "train.epochs",
    "lr": "optim.lr", "optimizer": "optim.name", "momentum": "optim.momentum",
    "weight_decay": "optim.weight_decay", "schedule": "optim.schedule",
    "batch_size": "train.batch_size", "seed": "train.seed", "dropout": "model.dropout",
    "width": "model.width", "validation": "data.validation",
}


def _add_config_flags(p: argparse.ArgumentParser,
                      dataset_help: str = "mnist, fashion-mnist or cifar10 (default "
                                          "fashion-mnist)") -> None:
    p.add_argument("--config", type=Path, help="a TOML file with [data] [model] [optim] [train]")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set model.bn_conv1=true (repeatable)")
    p.add_argument("--dataset", help=dataset_help)
    p.add_argument("--model", help="architecture: " + ", ".join(models())
                   + " (net: the assignment's default; dlab/models/ holds one file each)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float, help="learning rate (default: the optimizer's default)")
    p.add_argument("--optimizer", help="sgd, adam, adamw, rmsprop, adagrad or adadelta")
    p.add_argument("--momentum", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", help=", ".join(SCHEDULES[:-1]) + " or " + SCHEDULES[-1])
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--dropout", type=float)
    p.add_argument("--width", type=float, help="channel/width multiplier of the default net")
    p.add_argument("--validation", help="'test' (test set as validation) or 'holdout'")


def config_from_args(args: argparse.Namespace, base: dict[str, Any] | None = None) -> RunConfig:
    """Resolve the run config: base, then --config file, then flags, then --set (later wins)."""
    data = dict(base or {})
    if args.config:
        data = merge(data, load_toml(args.config))
    flags = {key: getattr(args, attr) for attr, key in FLAG_KEYS.items()
             if getattr(args, attr, None) is not None}
    data = merge(data, dotted_to_nested(flags))
    return resolve(merge(data, parse_set_args(args.set)))


def _held_config(run: Path) -> RunConfig | None:
    """The classification config a run directory holds; None if it holds another task's or
    its config.json is damaged."""
    try:
        return resolve(read_json(run / CONFIG))
    except (OSError, ValueError, DlabError):
        return None


def _find_interrupted(root: Path, cfg: RunConfig) -> Path | None:
    for run in reversed(list_runs(root)):
        if read_result(run) is None and not is_locked(run) and check_run(run) is None \
                and _held_config(run) == cfg:
            return run
    return None


def _train_into(cfg: RunConfig, run_dir: Path, args: argparse.Namespace, fresh: bool) -> int:
    from dlab.torch_engine.train import train_run

    if not fresh:
        bad = check_run(run_dir)
        if bad is not None:
            raise DlabError(f"run directory {str(run_dir)!r} is damaged: {bad['damaged']}")
    print(f"run directory: {run_dir}")
    try:
        with one_line_os_errors(run_dir):  # read-only or full: one line naming the place
            result = train_run(cfg, run_dir, data_dir=args.data_dir, device=args.device,
                               progress=not args.quiet)
    except DlabError:
        if fresh:
            remove_unstarted(run_dir)  # refused before its first checkpoint: leave no litter
        raise
    if result["status"] == "damaged":
        raise DlabError(f"run directory {str(run_dir)!r} is damaged: {result['damaged']}")
    acc = metric(result, "val_acc")
    shown = "n/a" if acc is None else f"{100 * acc:.2f}%"
    print(f"{result['status']}: final validation accuracy {shown} "
          f"({result['epochs_completed']} epochs, {result['seconds_per_epoch'] or 0:.1f} s/epoch) "
          f"→ {run_dir}")
    return 0 if result["status"] in ("finished", "pruned") else 1


def _given_config_flags(args: argparse.Namespace) -> list[str]:
    """The config flags given on the command line, as typed (--epochs, --set ...)."""
    given = [f"--{attr.replace('_', '-')}" for attr in ("config", *FLAG_KEYS)
             if getattr(args, attr, None) is not None]
    return given + (["--set"] if args.set else [])


def cmd_train(args: argparse.Namespace) -> int:
    root = runs_dir(args)
    if args.resume and args.resume != "auto":
        given = _given_config_flags(args)
        if given:
            raise DlabError(f"--resume {args.resume} with {', '.join(given)}: a resumed run "
                            "keeps the config it started with; drop those flags, or train a "
                            "new run without --resume")
        run_dir = Path(args.resume)
        if not (run_dir / CONFIG).is_file():
            raise DlabError(f"--resume {str(run_dir)!r}: not a run directory (no {CONFIG})")
        try:
            cfg = resolve(read_json(run_dir / CONFIG))
        except ValueError as exc:
            raise DlabError(f"--resume {str(run_dir)!r}: its {CONFIG} is damaged ({exc})") from None
        return _train_into(cfg, run_dir, args, fresh=False)
    cfg = config_from_args(args)
    if args.resume == "auto":
        run_dir = _find_interrupted(root, cfg)
        if run_dir is None:
            raise DlabError(f"--resume: no interrupted run of this config (hash {cfg.hash()}) "
                            f"under {str(root)!r}")
        return _train_into(cfg, run_dir, args, fresh=False)
    stem = f"{timestamp()}-{cfg.data.dataset}-{cfg.model.name}-{cfg.hash()[:8]}"
    return _train_into(cfg, create_run_dir(root, stem), args, fresh=True)


def cmd_eval(args: argparse.Namespace) -> int:
    from dlab.torch_engine.evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, args.dataset, data_dir=args.data_dir,
                                 device=args.device)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.dataset} test: accuracy {100 * result['val_acc']:.2f}%  "
              f"loss {result['val_loss']:.4f}  (n={result['n']})")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from dlab.torch_engine.checkpoint import checkpoint_json, read_checkpoint

    if args.lr_factor is not None and not 0 < args.lr_factor < math.inf:
        raise DlabError(f"--lr-factor {args.lr_factor}: expected a number > 0 (e.g. 0.05)")
    set_lr = "optim.lr" in {item.partition("=")[0].strip() for item in args.set}
    if args.lr_factor is not None and (args.lr is not None or set_lr):
        given = f"--lr {args.lr}" if args.lr is not None else "--set optim.lr"
        raise DlabError(f"{given} and --lr-factor {args.lr_factor}: give one (--lr sets the "
                        "learning rate, --lr-factor scales the checkpoint's)")
    factor = DEFAULT_LR_FACTOR if args.lr_factor is None else args.lr_factor
    source = checkpoint_json(args.checkpoint)
    meta, _ = read_checkpoint(source)  # unreadable or corrupt: one line before any run dir
    try:
        base = meta["config"]
        base["optim"]["lr"] = base["optim"]["lr"] * factor
        base["data"]["dataset"] = args.dataset
        base["train"]["init_from"] = str(source.resolve().with_suffix(""))
    except (KeyError, TypeError):
        raise DlabError(f"checkpoint {str(source)!r} holds no classification config "
                        "(data, optim, train); expected a checkpoint of `dlab train`") from None
    cfg = config_from_args(args, base)
    stem = f"{timestamp()}-finetune-{cfg.data.dataset}-{cfg.hash()[:8]}"
    return _train_into(cfg, create_run_dir(runs_dir(args), stem), args, fresh=True)


def cmd_predict(args: argparse.Namespace) -> int:
    import io

    import numpy as np

    from dlab.torch_engine.checkpoint import load_checkpoint
    from dlab.torch_engine.evaluate import checkpoint_test_data, evaluate, resolve_device

    if args.out.is_dir():
        raise DlabError(f"--out {str(args.out)!r} is a folder; expected a CSV file path")
    if not args.out.parent.is_dir():
        raise DlabError(f"--out {str(args.out)!r}: folder {str(args.out.parent)!r} does not "
                        "exist; expected a CSV file path in an existing folder")
    if not os.access(args.out.parent, os.W_OK):
        read_only = bool(os.statvfs(args.out.parent).f_flag & os.ST_RDONLY)
        raise DlabError(f"--out {str(args.out)!r}: folder {str(args.out.parent)!r} is not "
                        "writable (" + ("read-only file system" if read_only else
                                        "permission denied") + ")")
    device = resolve_device(args.device)
    model, cfg, meta = load_checkpoint(args.checkpoint, device)
    data = checkpoint_test_data(cfg, meta, args.dataset or cfg.data.dataset, args.data_dir, device)
    result = evaluate(model, data, cfg.train.eval_batch_size, tta=cfg.train.tta,
                      precision=cfg.train.precision)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["image_id", "label"])
    writer.writerows(zip(range(len(data)), result.predictions.astype(np.int64).tolist()))
    with one_line_os_errors():  # a read-only or full place: one line naming the path
        atomic_write_bytes(args.out, text.getvalue().encode())
    print(f"wrote {len(data)} predictions to {args.out} (test accuracy {100 * result.acc:.2f}%)")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    root = runs_dir(args)
    runs = list_runs(root)
    if not runs:
        print(f"no runs under {root}")
        return 0
    print(f"{'run':<58} {'task':<14} {'status':<11} {'what':<22} {'epochs':>6} "
          f"{'best':>18} {'s/epoch':>8}")
    for run in runs:
        bad = check_run(run)  # one unreadable file is shown on its run's row, never raised
        result = bad or read_result(run)
        status = result["status"] if result is not None else \
            "running" if is_locked(run) else "interrupted"
        what, best_text = _run_facts(run, result)
        spe = None if result is None else result.get("seconds_per_epoch")
        epochs = "-" if result is None or result.get("epochs_completed") is None \
            else result["epochs_completed"]
        task = (result or {}).get("task") or _config_task(run)
        print(f"{str(run.relative_to(root)):<58} {task:<14} {status:<11} {what:<22} "
              f"{epochs!s:>6} {best_text:>18} {'-' if spe is None else f'{spe:.1f}':>8}")
        if bad is not None:
            print(f"  damaged: {bad['damaged']}")
    return 0


def _config_task(run: Path) -> str:
    try:
        return str(read_json(run / CONFIG).get("task", "classification"))
    except (OSError, ValueError, AttributeError):
        return "?"


def _run_facts(run: Path, result: dict[str, Any] | None) -> tuple[str, str]:
    """(dataset · model or the task's own facts, "<primary> <best value>") for one listing row."""
    info = (result or {}).get("info", {})
    what = " · ".join(str(info[k]) for k in ("dataset", "model") if info.get(k))
    if not what:
        try:
            cfg = read_json(run / CONFIG)
            what = str(cfg.get("data", {}).get("dataset", "")) if isinstance(cfg, dict) else ""
        except (OSError, ValueError):
            what = "config.json damaged"
    if result is None or result["status"] == "damaged":
        return what or "-", "-"
    name = result["primary"]["name"]
    value = primary_value(result)
    if value is None:
        return what or "-", "-"
    shown = f"{100 * value:.2f}%" if name.endswith("acc") else f"{value:.4g}"
    return what or "-", f"{name} {shown}"


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model (default: the assignment's net on Fashion-MNIST)")
    _add_config_flags(p)
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="RUN_DIR",
                   help="continue a killed run from its last checkpoint (the latest interrupted "
                        "run of the same config, or RUN_DIR)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    add_data_dir(p), add_runs_dir(p), add_device(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a trained model, unchanged, on a dataset's test set")
    p.add_argument("checkpoint", help="run directory or <run>/checkpoints/best|last")
    p.add_argument("--dataset", required=True)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_data_dir(p), add_device(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("finetune", help="continue training a checkpoint on a dataset")
    p.add_argument("checkpoint", help="run directory or <run>/checkpoints/best|last")
    p.add_argument("--lr-factor", type=float, default=None,
                   help=f"multiply the checkpoint's lr by this (default {DEFAULT_LR_FACTOR} = "
                        "20x smaller; not with --lr)")
    _add_config_flags(p, dataset_help=f"the dataset to fine-tune on: mnist, fashion-mnist or "
                                      f"cifar10 (default {FINETUNE_DATASET})")
    p.set_defaults(dataset=FINETUNE_DATASET)
    p.add_argument("--quiet", action="store_true", help="no progress output")
    add_data_dir(p), add_runs_dir(p), add_device(p)
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("predict", help="write test-set predictions as CSV (image_id,label)")
    p.add_argument("checkpoint", help="run directory or <run>/checkpoints/best|last")
    p.add_argument("--dataset", help="default: the checkpoint's dataset")
    p.add_argument("--out", type=Path, default=Path("predictions.csv"))
    add_data_dir(p), add_device(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("runs", help="list runs: status, accuracy, time")
    add_runs_dir(p)
    p.set_defaults(func=cmd_runs)
