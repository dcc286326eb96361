"""`dlab numpy mlp|convnet` (the from-scratch numpy engine) and `dlab gradcheck`."""

from __future__ import annotations

import argparse
from pathlib import Path

from dlab.cli.common import add_data_dir, add_runs_dir, runs_dir
from dlab.config import merge, parse_set_args


def register(subparsers) -> None:
    numpy_p = subparsers.add_parser("numpy", help="the from-scratch numpy engine")
    sub = numpy_p.add_subparsers(dest="numpy_command", metavar="MODEL", required=True)

    mlp = sub.add_parser("mlp", help="the numpy MLP on MNIST (run directory with plots)")
    add_data_dir(mlp)
    add_runs_dir(mlp)
    mlp.add_argument("--epochs", type=int, help="training epochs")
    mlp.add_argument("--hidden", type=int, nargs="+", help="hidden layer widths")
    mlp.add_argument("--dropout", type=float, nargs="+", help="dropout rate per hidden layer")
    mlp.add_argument("--lr", type=float, help="base learning rate")
    mlp.add_argument("--augment", action="store_true",
                     help="augment training data (shift, rotation, zoom, elastic)")
    mlp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="config override, e.g. solver.schedule.gamma=0.95, augment.zoom=0.1")
    mlp.add_argument("--resume", type=Path, help="continue an interrupted run directory")
    mlp.set_defaults(func=_mlp)

    conv = sub.add_parser("convnet", help="the numpy conv-relu-pool-affine net on CIFAR-10")
    add_data_dir(conv)
    add_runs_dir(conv)
    conv.add_argument("--epochs", type=int, default=1)
    conv.add_argument("--train-size", type=int, default=49000)
    conv.add_argument("--val-size", type=int, default=1000)
    conv.add_argument("--seed", type=int, default=0)
    conv.add_argument("--lr-decay", type=float, default=0.997,
                      help="lr factor per iteration (default 0.997; 1 = the course's constant lr)")
    conv.set_defaults(func=_convnet)

    grad = subparsers.add_parser("gradcheck", help="gradient-check every numpy layer and loss")
    grad.add_argument("--only", nargs="+", help="names of the checks to run")
    grad.set_defaults(func=_gradcheck)


def _mlp(args: argparse.Namespace) -> int:
    from dlab.numpy_engine.mnist_mlp import (DEFAULT_AUGMENT, MnistMLPConfig, resolve_mnist_mlp,
                                             run_mnist_mlp)

    cfg = None
    if args.resume is not None:
        _check_numpy_mlp_run(args.resume)
    else:
        data: dict = {"model": {}, "solver": {}}
        if args.augment:
            data["augment"] = dict(DEFAULT_AUGMENT.__dict__)
        if args.epochs is not None:
            data["solver"]["epochs"] = args.epochs
        if args.lr is not None:
            data["solver"]["lr"] = args.lr
        if args.hidden is not None:
            data["model"]["hidden"] = args.hidden
            if args.dropout is None:
                data["model"]["dropout"] = [MnistMLPConfig().model.dropout[0]] * len(args.hidden)
        if args.dropout is not None:
            data["model"]["dropout"] = args.dropout
        cfg = resolve_mnist_mlp(merge(data, parse_set_args(args.set)))
    run_dir = run_mnist_mlp(cfg, args.data_dir, runs_dir(args), resume=args.resume)
    print(run_dir)
    return 0


def _check_numpy_mlp_run(run_dir: Path) -> None:
    """Refuse to resume another task's run directory (a torch run, a numpy convnet …) as a
    numpy MLP run, naming the task it holds (its manifest.json or result.json says)."""
    from dlab.errors import DlabError
    from dlab.numpy_engine.mnist_mlp import TASK_NAME
    from dlab.runs import MANIFEST, read_json

    for name in (MANIFEST, "result.json"):
        try:
            task = read_json(Path(run_dir) / name).get("task")
        except (OSError, ValueError, AttributeError):
            continue
        if task and task != TASK_NAME:
            raise DlabError(f"--resume {str(run_dir)!r}: not a numpy MLP run (it holds a "
                            f"{task!r} run); expected a run directory of `dlab numpy mlp`")
        if task:
            return


def _convnet(args: argparse.Namespace) -> int:
    from dlab.errors import DlabError
    from dlab.numpy_engine.cifar_convnet import ConvNetRunConfig, run_cifar_convnet

    for flag, value in (("--epochs", args.epochs), ("--train-size", args.train_size),
                        ("--val-size", args.val_size)):
        if value < 1:
            raise DlabError(f"{flag} {value}: expected an integer >= 1")
    if args.seed < 0:
        raise DlabError(f"--seed {args.seed}: expected an integer >= 0")
    if not 0 < args.lr_decay <= 1:
        raise DlabError(f"--lr-decay {args.lr_decay}: expected a factor per iteration in (0, 1]")
    cfg = ConvNetRunConfig(epochs=args.epochs, train_size=args.train_size,
                           val_size=args.val_size, seed=args.seed, lr_decay=args.lr_decay)
    print(run_cifar_convnet(cfg, args.data_dir, runs_dir(args)))
    return 0


def _gradcheck(args: argparse.Namespace) -> int:
    from dlab.numpy_engine.checks import run_checks

    worst = 0.0
    print(f"{'check':<28} {'param':<7} {'rel. error':>11}")
    for name, param, err in run_checks(args.only):
        worst = max(worst, err)
        print(f"{name:<28} {param:<7} {err:11.2e}")
    print(f"worst relative error: {worst:.2e}")
    return 0 if worst <= 1e-7 else 1
