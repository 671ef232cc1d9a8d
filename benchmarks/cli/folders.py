"""The options that say where a command reads and writes results and boards (`benchmarks.paths` has the rule):
`./medzoo-runs/` (or `$MEDZOO_RUNS_DIR`) unless `--committed` or an explicit folder is given."""

from __future__ import annotations

import argparse
from pathlib import Path

COMMITTED_HELP = ("read and write the committed leaderboards/results/ and leaderboards/ of the medzoo checkout this "
                  "runs inside (a clone of the repository) instead of ./medzoo-runs/")


def add_store_arguments(parser: argparse.ArgumentParser, *, boards: bool) -> None:
    parser.add_argument("--committed", action="store_true", help=COMMITTED_HELP)
    parser.add_argument("--results-dir",
                        help="results store (default ./medzoo-runs/results, or $MEDZOO_RUNS_DIR/results)")
    if boards:
        parser.add_argument("--out-dir", help="boards folder (default ./medzoo-runs, or $MEDZOO_RUNS_DIR)")


def store_dirs(args: argparse.Namespace) -> tuple[Path, Path]:
    """(results store, boards folder) from `--committed`, `--results-dir`, `--out-dir` and `$MEDZOO_RUNS_DIR`."""
    from benchmarks import paths
    from zoo import MedzooError

    out_dir = getattr(args, "out_dir", None)
    if args.committed:
        if args.results_dir or out_dir:
            raise MedzooError("--committed names the checkout's own leaderboards/ folders: leave out --results-dir "
                              "and --out-dir, or leave out --committed")
        checkout = paths.checkout()
        return checkout.results, checkout.boards
    return Path(args.results_dir or paths.results_dir()), Path(out_dir or paths.runs_dir())
