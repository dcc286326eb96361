"""`dlab report STUDY`: rebuild a study's report.md and report.html from its run directories."""

from __future__ import annotations

import argparse

from dlab.cli.common import add_runs_dir, runs_dir


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="write report.md and a self-contained report.html for a study",
        description="Build a study report from its run directories (never retrains). Variants "
                    "without a run directory show as 'not run'.")
    p.add_argument("study", help="a study file or the name of a built-in study")
    add_runs_dir(p)
    p.add_argument("--out", default=None,
                   help="output folder (default: <runs-dir>/<study name>/report)")
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from dlab.reports import build_report
    from dlab.runs import one_line_os_errors

    with one_line_os_errors():  # --out read-only, full or a file: one line naming the path
        result = build_report(args.study, runs_dir(args), args.out)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(result.counts.items()))
    print(f"variants: {summary}")
    for label, detail in result.damaged:
        print(f"damaged {label}: {detail}")
    print(f"wrote {result.markdown}")
    print(f"wrote {result.html} ({len(result.figures)} figures embedded)")
    return 0
