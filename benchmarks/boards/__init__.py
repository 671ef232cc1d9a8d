"""Boards: pure functions of the results store that give `<suite>.md`, `.csv` and `.png`.

A suite names its board's kind (`Suite.board`); `BOARDS` maps each kind to a module that follows `Board`. A new
kind of board is one module with these five functions and one line in `BOARDS`. The CLI writes the files through
the store and prints the rich table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import pandas as pd
from rich.table import Table

from benchmarks.boards import classification, segmentation, transfer_matrix
from benchmarks.results import ResultStore
from benchmarks.suites import Suite
from zoo import UnknownNameError
from zoo.extras import has


class Board(Protocol):
    """What a board module provides. `board` computes the frame once (paired bootstraps are the slow part); the
    others render it, computing it themselves only when not given one."""

    def board(self, store: ResultStore, suite: Suite) -> pd.DataFrame: ...

    def markdown(self, store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> str: ...

    def csv_text(self, store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> str: ...

    def plot_png(self, store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> bytes: ...

    def rich_table(self, store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> Table: ...


BOARDS: dict[str, Board] = {
    "classification": classification,
    "segmentation": segmentation,
    "transfer-matrix": transfer_matrix,
}


def board_of(suite: Suite) -> Board:
    """The board module of the suite's kind."""
    if suite.board not in BOARDS:
        raise UnknownNameError("board kind", suite.board, sorted(BOARDS))
    return BOARDS[suite.board]


def suite_board(store: ResultStore, suite: Suite) -> pd.DataFrame:
    """The board of any suite, as a frame."""
    return board_of(suite).board(store, suite)


def generate(store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> dict[str, str | bytes]:
    """File name → content for the suite's board (the CLI writes them through the store's atomic writer); the
    `.png` only where matplotlib (the `[plots]` extra) is installed."""
    kind = board_of(suite)
    b = kind.board(store, suite) if b is None else b  # the paired bootstraps run once, not once per file
    files: dict[str, str | bytes] = {f"{suite.name}.md": kind.markdown(store, suite, b),
                                     f"{suite.name}.csv": kind.csv_text(store, suite, b)}
    if has("matplotlib"):
        files[f"{suite.name}.png"] = kind.plot_png(store, suite, b)
    return files


def check(store: ResultStore, suite: Suite, out_dir: Path | str) -> list[str]:
    """Differences between the committed `.md`/`.csv` and what the store generates (PNG bytes are not compared)."""
    diffs = []
    for name, content in generate(store, suite).items():
        if name.endswith(".png"):
            continue
        path = Path(out_dir) / name
        if not path.is_file():
            diffs.append(f"{path} is missing")
        elif path.read_text(encoding="utf-8") != content:
            diffs.append(f"{path} is out of date")
    return diffs


def rich_table(store: ResultStore, suite: Suite, b: pd.DataFrame | None = None) -> Table:
    """The board for a terminal: the columns a reader ranks by (the .md has the rest)."""
    return board_of(suite).rich_table(store, suite, b)
