"""`medzoo leaderboard`: generate boards from the results store, or `--check` the committed ones."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rich.markup import escape

from benchmarks.cli.console import add_format_argument, err, out, show

if TYPE_CHECKING:
    from benchmarks.results import ResultStore
    from benchmarks.suites import Suite


def write_board(suite: Suite, store: ResultStore, out_dir: str, fmt: str | None) -> None:
    """Write `suite`'s board files into `out_dir` and print its table (json: every column of the board's rows)."""
    import json
    from pathlib import Path

    from benchmarks import boards
    from benchmarks.results.store import atomic_write
    from zoo.extras import install_hint

    board = boards.suite_board(store, suite)
    files = boards.generate(store, suite, board)
    for name, content in files.items():
        path = Path(out_dir) / name
        atomic_write(path, content if isinstance(content, bytes) else content.encode())
        err.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
    if f"{suite.name}.png" not in files:
        err.print(f"no {suite.name}.png: plots need matplotlib ({install_hint('matplotlib')})", markup=False,
                  highlight=False, soft_wrap=True)
    show(boards.rich_table(store, suite, board), fmt, json.loads(board.to_json(orient="records")))


def cmd_leaderboard(args: argparse.Namespace) -> None:
    from pathlib import Path

    from benchmarks import boards
    from benchmarks.results import ResultStore
    from benchmarks.suites import SUITES
    from zoo import MedzooError, MissingExtraError

    store = ResultStore(args.results_dir)
    suites = [args.suite] if args.suite else [
        s.name for s in SUITES if (Path(args.out_dir) / f"{s.name}.md").is_file() or any(store.results(s.name))]
    if not suites:
        raise MedzooError(f"no results in {store.root} and no boards in {args.out_dir}: nothing to generate or check")
    if args.format == "json" and len(suites) > 1 and not args.check:
        raise MedzooError(f"--format json prints one board: name it with --suite (one of {', '.join(suites)})")
    for name in suites:
        suite = SUITES.get(name)
        try:
            if not args.check:
                write_board(suite, store, args.out_dir, args.format)
                continue
            diffs = boards.check(store, suite, args.out_dir)
        except MissingExtraError as e:
            if args.suite:
                raise
            err.print(f"skipped {name}: {e}", markup=False, highlight=False, soft_wrap=True)  # the others still run
            continue
        if diffs:
            raise MedzooError(f"{name}: the committed board differs from what the results store generates "
                              f"({'; '.join(diffs)}). Run `medzoo leaderboard --suite {name}` and commit the output.")
        out.print(f"[green]ok[/green] {name}: {escape(args.out_dir)}/{name}.md and .csv match the results store",
                  highlight=False, soft_wrap=True)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    lb = sub.add_parser("leaderboard", help="generate boards from the results store, or --check the committed ones")
    lb.add_argument("--suite", help="one suite (default: every suite with results)")
    lb.add_argument("--check", action="store_true", help="exit non-zero if the committed .md/.csv differ")
    lb.add_argument("--results-dir", default="leaderboards/results", help="results store (default %(default)s)")
    lb.add_argument("--out-dir", default="leaderboards", help="boards folder (default %(default)s)")
    add_format_argument(lb)
    lb.set_defaults(func=cmd_leaderboard)
