"""Boards: pure functions of the results store that write `<suite>.md`, `.csv` and `.png`.

Which board a suite gets is chosen here; the CLI writes the files through the store and prints the rich table.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pandas as pd
from rich.table import Table

from benchmarks.boards import classification, segmentation, transfer_matrix
from benchmarks.results import ResultStore


def _kind(suite: str) -> ModuleType:
    if transfer_matrix.is_transfer_matrix(suite):
        return transfer_matrix
    return segmentation if segmentation.is_segmentation(suite) else classification


def suite_board(store: ResultStore, suite: str) -> pd.DataFrame:
    """The board of any suite."""
    return _kind(suite).board(store, suite)  # type: ignore[no-any-return]


def generate(store: ResultStore, suite: str, b: pd.DataFrame | None = None) -> dict[str, str | bytes]:
    """File name → content for the suite's board (the CLI writes them through the store's atomic writer)."""
    kind = _kind(suite)
    b = kind.board(store, suite) if b is None else b  # the paired bootstraps run once, not once per file
    return {f"{suite}.md": kind.markdown(store, suite, b), f"{suite}.csv": kind.csv_text(store, suite, b),
            f"{suite}.png": kind.plot_png(store, suite, b)}


def check(store: ResultStore, suite: str, out_dir: Path | str) -> list[str]:
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


def rich_table(store: ResultStore, suite: str, b: pd.DataFrame | None = None) -> Table:
    """The board for a terminal: the columns a reader ranks by (the .md has the rest)."""
    return _kind(suite).rich_table(store, suite, b)  # type: ignore[no-any-return]
