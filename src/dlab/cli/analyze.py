"""`dlab analyze NAME|list|all [--full] [--set key=value] [--data-dir D] [--runs-dir R]`."""

from __future__ import annotations

import argparse
import sys

from dlab.cli.common import add_data_dir, add_runs_dir, runs_dir
from dlab.config import parse_set_args
from dlab.errors import DlabError


def register(subparsers) -> None:
    p = subparsers.add_parser("analyze", help="optimization / generalization experiments",
                              description="Run one analysis experiment (or 'all', or 'list' "
                                          "them); each writes plots, their data and a verdict.")
    p.add_argument("name", help="experiment name, 'list' or 'all'")
    p.add_argument("--full", action="store_true", help="the original (long) sizes")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a size, e.g. epochs=5 (with 'all': experiment.key=value)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_data_dir(p)
    add_runs_dir(p)
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from dlab.analysis import registry, runner

    log = (lambda message: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    overrides = parse_set_args(args.set)
    if args.name == "list":
        for spec in registry.experiments().values():
            print(f"{spec.name:28s} {spec.description}")
        return 0
    if args.name == "all":
        unknown = sorted(set(overrides) - set(registry.experiments()))
        if unknown:
            raise DlabError(f"--set {unknown[0]}.…: with 'all', keys are experiment.key=value; "
                            "expected an experiment name before the dot")
        root, results = runner.analyze_all(runs_dir(args), overrides, args.full, args.data_dir,
                                           log=log)
        for name, r in results.items():
            print(f"{name:28s} {'passed' if r['final']['passed'] else 'NOT shown':10s} "
                  f"{r['time_s']:8.1f} s")
        print(f"report: {root / 'report.md'}")
        return 0
    run_dir, result = runner.analyze(args.name, runs_dir(args), overrides, args.full,
                                     args.data_dir, log=log)
    verdict = result["info"]["verdict"]
    print(f"{args.name}: {'passed' if verdict['passed'] else 'NOT shown'} — {verdict['claim']}")
    print(f"run: {run_dir}")
    return 0
