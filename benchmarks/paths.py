"""Where medzoo writes when not told where: a user's runs folder, never a checkout's committed results and boards.

A pip user runs medzoo from any folder, and a contributor's first run in a clone must not rewrite the committed
leaderboards. So results, boards and speed reports go to `./medzoo-runs/` (or `$MEDZOO_RUNS_DIR`), which this
repository's `.gitignore` lists; `--committed` (run, leaderboard, audit, export, speed) names the medzoo checkout
the command runs inside, whose `leaderboards/` and `docs/performance.md` are the committed ones.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

RUNS_ENV = "MEDZOO_RUNS_DIR"
RUNS_DEFAULT = "medzoo-runs"


def runs_dir() -> Path:
    """`$MEDZOO_RUNS_DIR`, else `./medzoo-runs`: a user's results store (`results/`), boards and reports."""
    return Path(os.environ.get(RUNS_ENV) or RUNS_DEFAULT)


def results_dir() -> Path:
    return runs_dir() / "results"


@dataclass(frozen=True)
class Checkout:
    """A medzoo source checkout: the folders its committed results, boards and speed report live in."""

    root: Path

    @property
    def results(self) -> Path:
        return self.root / "leaderboards" / "results"

    @property
    def boards(self) -> Path:
        return self.root / "leaderboards"

    @property
    def performance(self) -> Path:
        return self.root / "docs" / "performance.md"


def _is_checkout(folder: Path) -> bool:
    try:
        project = tomllib.loads((folder / "pyproject.toml").read_text()).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return project.get("name") == "medzoo" and (folder / "leaderboards").is_dir()


def checkout(start: Path | None = None) -> Checkout:
    """The medzoo checkout holding `start` (default: the current folder), for `--committed`; its root relative to
    the current folder."""
    from zoo import MedzooError

    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if _is_checkout(folder):  # relative to the current folder, as printed paths read best
            return Checkout(Path(os.path.relpath(folder)))
    raise MedzooError(f"--committed uses a medzoo checkout's committed leaderboards/ (and docs/performance.md), and "
                      f"{here} is not inside one "
                      f"(no pyproject.toml naming medzoo beside a leaderboards/ folder above it). Run it inside a "
                      f"clone of the repository, or leave --committed out to use ./{RUNS_DEFAULT}/ "
                      f"(${RUNS_ENV})")
