"""The `medzoo` command line: the only place that prints. Errors a user can fix are printed as one message (no
traceback) and exit with status 2.

One module per command (`models` holds ls, info and pull; `export` holds export and push); each adds its subparser
with `add_parsers`. Building the parser imports none of torch, timm, zoo's models, pandas or matplotlib: every
command imports what it needs when it runs, so `medzoo --help` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata

from rich.markup import escape

from benchmarks.cli import audit, cache, export, leaderboard, models, predict, probe, run, speed
from benchmarks.cli.console import err, out, set_verbosity

COMMANDS = (models, probe, run, predict, speed, cache, export, audit, leaderboard)  # `medzoo --help` lists in order


def _version() -> str:
    try:
        return metadata.version("medzoo")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed: pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medzoo", description="medzoo: medical-imaging model zoo and benchmark.")
    parser.add_argument("--version", action="version", version=f"medzoo {_version()}")
    _add_verbosity(parser, False)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parsers(sub)
    for sp in sub.choices.values():  # `medzoo run -q` as well as `medzoo -q run`
        _add_verbosity(sp, argparse.SUPPRESS)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser, default: object) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", default=default,
                       help="errors only: no progress bars, no 'wrote' lines, warnings and errors from logs")
    group.add_argument("-v", "--verbose", action="store_true", default=default, help="debug logs too")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_verbosity(args.quiet, args.verbose)
    try:
        args.func(args)
    except KeyboardInterrupt:
        err.quiet = False
        err.print("interrupted")
        return 130
    except Exception as e:
        errors = sys.modules.get("zoo.errors")  # not imported: the error cannot be a MedzooError
        if errors is None or not isinstance(e, errors.MedzooError):
            raise
        err.quiet = False  # -q keeps errors
        err.print(f"[bold red]error:[/bold red] {escape(str(e))}", highlight=False, soft_wrap=True)  # user text
        return 2
    return 0


__all__ = ["build_parser", "err", "main", "out"]

if __name__ == "__main__":
    sys.exit(main())
