"""The two consoles every command prints to (results on stdout, progress and messages on stderr) and the one way
a listing reaches stdout: `show(table, fmt)`.

Formats: `table` (rich, for people), `plain` (the title, then aligned columns, no box, never truncated: the
default when stdout is not a terminal, so `medzoo ls | grep` and logs see whole names), `tsv` and `json` (for
scripts: no title).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

out = Console()
err = Console(stderr=True)

FORMATS = ("table", "plain", "tsv", "json")


def add_format_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="table (default on a terminal), plain (default when piped: full width, no box), "
                             "tsv or json (for scripts)")


def chosen_format(fmt: str | None) -> str:
    """The format asked for, else `table` on a terminal and `plain` otherwise."""
    return fmt or ("table" if out.is_terminal else "plain")


def _plain(cell: object) -> str:
    if isinstance(cell, Text):
        return cell.plain
    return Text.from_markup(cell).plain if isinstance(cell, str) else str(cell)


def key_of(header: str) -> str:
    """A column header as a script-friendly key: 'GFLOPs (2×MAC)' → 'gflops_2xmac'."""
    k = "".join(c if c.isalnum() else "_" for c in header.lower().replace("×", "x").replace("#", "rank"))
    return "_".join(p for p in k.split("_") if p)


def table_rows(table: Table) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of a rich table as plain strings (markup removed)."""
    headers = [_plain(c.header) for c in table.columns]
    cols = [[_plain(cell) for cell in c.cells] for c in table.columns]
    return headers, [list(r) for r in zip(*cols, strict=True)]


def show(table: Table, fmt: str | None, records: Sequence[Mapping[str, Any]] | None = None) -> None:
    """Print `table` in `fmt`. `records` (typed values) are what `json` prints when given; otherwise json holds the
    table's cells as strings under `key_of(header)` keys, as tsv's header row does."""
    fmt = chosen_format(fmt)
    if fmt == "table":
        if out.is_terminal:
            out.print(table)
        else:  # as wide as the table wants: a log or a pipe has no width to fit
            width = Measurement.get(out, out.options.update_width(10_000), table).maximum
            Console(file=out.file, width=width, no_color=out.no_color).print(table)
        return
    headers, rows = table_rows(table)
    keys = [key_of(h) for h in headers]
    if fmt == "json":
        data = list(records) if records is not None else [dict(zip(keys, r, strict=True)) for r in rows]
        print_json(data)
    elif fmt == "tsv":
        for r in (keys, *rows):
            print("\t".join(c.replace("\t", " ").replace("\n", " ") for c in r))
    else:  # for people reading a log: the title, then aligned columns
        if table.title:
            print(_plain(table.title))
        widths = [max(len(c) for c in col) for col in zip(headers, *rows, strict=True)]
        for r in (headers, *rows):
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if table.caption:
            print(_plain(table.caption))


def show_facts(facts: Mapping[str, str], fmt: str | None) -> None:
    """Key/value facts (e.g. `medzoo info`): a borderless grid for people, `key<TAB>value` / aligned lines for
    scripts. JSON callers print their own object."""
    fmt = chosen_format(fmt)
    if fmt == "table":
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        for k, v in facts.items():
            grid.add_row(Text(k), Text(v))
        out.print(grid)
        return
    sep = "\t" if fmt == "tsv" else "  "
    w = 0 if fmt == "tsv" else max(map(len, facts))
    for k, v in facts.items():
        print(f"{k.ljust(w)}{sep}{v}")


def print_json(data: object) -> None:
    print(json.dumps(data, indent=2, default=str))


def set_verbosity(quiet: bool, verbose: bool) -> None:
    """-q: errors only (no progress, no 'wrote' lines, warnings and up from logs); default: zoo's INFO logs (e.g.
    'classifier left randomly initialised'); -v: DEBUG logs too."""
    err.quiet = quiet
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = RichHandler(console=err, show_time=False, show_path=verbose, markup=False)
    for name in ("zoo", "benchmarks"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
