"""The `dlab` command: a thin layer that parses arguments and calls the library.

Each module in this package that defines `register(subparsers)` adds its commands; a new
command is a new module here, nothing else changes. Library errors (`DlabError`) become one
line on stderr and exit status 2; Ctrl-C exits with 130 after the library has cleaned up.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from dlab.errors import DlabError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlab", description="dlab: a deep-learning lab for the classic course experiments")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DlabError as exc:
        print(f"dlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
