"""`medzoo leaderboard`: generate boards from the results store, or `--check` the committed ones."""

from __future__ import annotations

import argparse
import shlex
from typing import TYPE_CHECKING

from rich.markup import escape

from benchmarks.cli.console import add_format_argument, err, out, show
from benchmarks.cli.folders import add_store_arguments, store_dirs

if TYPE_CHECKING:
    from pathlib import Path

    from benchmarks.results import ResultStore
    from benchmarks.suites import Suite


def write_board(suite: Suite, store: ResultStore, out_dir: Path, fmt: str | None) -> None:
    """Write `suite`'s board files into `out_dir` and print its table (json: every column of the board's rows)."""
    import json

    from benchmarks import boards
    from benchmarks.results.store import atomic_write
    from zoo.extras import install_hint

    board = boards.suite_board(store, suite)
    files = boards.generate(store, suite, board)
    md = out_dir / f"{suite.name}.md"
    changed = not md.is_file() or md.read_text(encoding="utf-8") != files[md.name]
    for name, content in files.items():
        path = out_dir / name
        atomic_write(path, content if isinstance(content, bytes) else content.encode())
        err.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
    if f"{suite.name}.png" not in files:
        stale = out_dir / f"{suite.name}.png"
        removed = changed and stale.is_file()
        if removed:  # a plot of older results would contradict the table beside it (an unchanged board keeps it)
            stale.unlink()
        err.print(f"no {suite.name}.png{' (the old one removed)' if removed else ''}: plots need matplotlib "
                  f"({install_hint('matplotlib')})", markup=False, highlight=False, soft_wrap=True)
    show(boards.rich_table(store, suite, board), fmt, json.loads(board.to_json(orient="records")))


def readme_headline(boards_dir: Path, check: bool) -> None:
    """With --committed: write (or check) the checkout README's headline block from the boards' Headline sections."""
    from benchmarks.boards import readme
    from benchmarks.results.store import atomic_write
    from benchmarks.suites import SUITES
    from zoo import MedzooError

    path = boards_dir.parent / "README.md"
    text = path.read_text(encoding="utf-8")
    new = readme.with_block(text, readme.block(boards_dir, list(SUITES)), path)
    if check and new != text:
        raise MedzooError(f"{path}: the headline block differs from the boards' Headline sections. Run `medzoo "
                          f"leaderboard --committed` and commit the output.")
    if check:
        out.print(f"[green]ok[/green] {escape(str(path))}: the headline block matches the boards", highlight=False,
                  soft_wrap=True)
    elif new != text:
        atomic_write(path, new.encode())
        err.print(f"wrote {path} (headline block)", markup=False, highlight=False, soft_wrap=True)


def cmd_leaderboard(args: argparse.Namespace) -> None:
    from benchmarks import boards
    from benchmarks.results import ResultStore
    from benchmarks.suites import SUITES
    from zoo import MedzooError, MissingExtraError

    results_dir, out_dir = store_dirs(args)
    store = ResultStore(results_dir)
    suites = [args.suite] if args.suite else [
        s.name for s in SUITES if (out_dir / f"{s.name}.md").is_file() or any(store.results(s.name))]
    if not suites:
        raise MedzooError(f"no results in {store.root} and no boards in {out_dir}: nothing to generate or check"
                          + ("" if args.committed else " (the committed boards: --committed)"))
    if args.format == "json" and len(suites) > 1 and not args.check:
        raise MedzooError(f"--format json prints one board: name it with --suite (one of {', '.join(suites)})")
    for name in suites:
        suite = SUITES.get(name)
        try:
            if not args.check:
                write_board(suite, store, out_dir, args.format)
                continue
            diffs = boards.check(store, suite, out_dir)
        except MissingExtraError as e:
            if args.suite:
                raise
            err.print(f"skipped {name}: {e}", markup=False, highlight=False, soft_wrap=True)  # the others still run
            continue
        if diffs:
            again = ["medzoo", "leaderboard", "--suite", name, *(["--committed"] if args.committed else []),
                     *(["--results-dir", args.results_dir] if args.results_dir else []),
                     *(["--out-dir", args.out_dir] if args.out_dir else [])]
            raise MedzooError(f"{name}: the board differs from what the results store generates "
                              f"({'; '.join(diffs)}). Run `{shlex.join(again)}`"
                              + (" and commit the output." if args.committed else "."))
        out.print(f"[green]ok[/green] {name}: {escape(str(out_dir))}/{name}.md and .csv match the results store",
                  highlight=False, soft_wrap=True)
    if args.committed:
        readme_headline(out_dir, args.check)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    lb = sub.add_parser("leaderboard", help="generate boards from the results store, or --check them")
    lb.add_argument("--suite", help="one suite (default: every suite with results)")
    lb.add_argument("--check", action="store_true",
                    help="write nothing; exit non-zero if a board's .md/.csv differ from what the store generates "
                         "(with --committed: the committed boards)")
    add_store_arguments(lb, boards=True)
    add_format_argument(lb)
    lb.set_defaults(func=cmd_leaderboard)
