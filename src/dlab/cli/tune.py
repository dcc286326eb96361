"""`dlab tune SPACE.toml`: Optuna search (TPE, median pruning); trials are ordinary runs; many
processes may share one --storage (see dlab.studies.tune)."""

from __future__ import annotations

import argparse

from dlab.cli.common import add_data_dir, add_device, add_runs_dir, runs_dir


def register(subparsers) -> None:
    p = subparsers.add_parser("tune", help="hyperparameter search over a TOML search space")
    p.add_argument("space", metavar="SPACE.toml", help="base config + [space.\"key\"] tables")
    p.add_argument("--trials", type=int, default=None, help="trials to run now (default: file)")
    p.add_argument("--storage", default=None,
                   help="Optuna storage URL shared by many workers (default: SQLite in the "
                        "runs dir), e.g. postgresql://user@host/db")
    add_runs_dir(p)
    add_data_dir(p)
    add_device(p)
    p.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from dlab.errors import DlabError
    from dlab.studies.tune import load_tune_spec, run_tune

    if args.trials is not None and args.trials < 0:
        raise DlabError(f"--trials {args.trials}: expected >= 0")
    spec = load_tune_spec(args.space)
    out = run_tune(spec, runs_dir(args), trials=args.trials, storage=args.storage,
                   data_dir=args.data_dir, device=args.device,
                   echo=lambda line: print(line, flush=True))
    print("trials: " + ", ".join(f"{n} {s}" for s, n in sorted(out["trials"].items())))
    if "best_value" in out:
        print(f"best {out['primary']} {out['best_value']:.4f} with {out['best_params']} "
              f"({out['best_run_dir']})")
    return 0
