"""Cell kinds: the code that turns one cell (model, weights, dataset, resolution, mode, seed) into a `Result`.

One module per kind, all on the one training loop of `cells.train`; `CELL_KINDS` maps a dataset's task to its kind.
Adding a kind is a module with a `run_<kind>_cell` and a row here (and its version in `benchmarks.versions`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import zoo
from benchmarks.cells.classification import run_classification_cell
from benchmarks.cells.feature_cache import FeatureCache
from benchmarks.cells.segmentation import run_segmentation_cell
from benchmarks.cells.train import Report, quiet
from benchmarks.data import DATASETS
from benchmarks.results import ResultStore
from benchmarks.results.schema import Result
from benchmarks.suites import Cell


class CellRunner(Protocol):
    def __call__(self, cell: Cell, data_dir: Path | str | None = ..., device: str = ...,
                 store: ResultStore | None = ..., report: Report = ..., cache: FeatureCache | None = ...,
                 keep_model: bool = ...) -> Result: ...


CELL_KINDS: dict[str, CellRunner] = {"classification": run_classification_cell, "segmentation": run_segmentation_cell}


def kind_of(cell: Cell) -> str:
    """The cell kind: the kind of its dataset's task (classification or segmentation)."""
    return DATASETS.get(cell.dataset).task.kind.value


def run_cell(cell: Cell, data_dir: Path | str | None = None, device: str = "cpu", store: ResultStore | None = None,
             report: Report = quiet, cache: FeatureCache | None = None, keep_model: bool = False) -> Result:
    """Run `cell` with its kind's code (see `run_classification_cell` / `run_segmentation_cell`); on CUDA, fp32 is
    IEEE fp32 throughout the cell, backward passes included (`zoo.ieee_fp32`)."""
    with zoo.ieee_fp32():
        return CELL_KINDS[kind_of(cell)](cell, data_dir, device, store, report, cache, keep_model)


__all__ = ["CELL_KINDS", "kind_of", "run_cell"]
