"""What of a suite a board shows, and what it does not: every board ends its tables with the suite's cells that have
no result, grouped, with why and what they would cost here.

The cost is estimated from the store itself, so a board stays a pure function of it: a result's duration per
training image and epoch (per image, for `features` cells) is carried to the cells of the same model, input size,
mode and precision, scaled by their dataset's training images and the protocol's epochs (an upper bound: early
stopping ends most cells sooner). Cells whose kind never ran have no estimate and say so.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from benchmarks.boards.render import current
from benchmarks.data import DATASETS
from benchmarks.results import Result, ResultStore
from benchmarks.suites import Cell, Suite
from zoo import TransferMode, get_spec

NETWORK_SOURCES = ("hf-hub:", "https://", "http://")  # weights a run downloads (cached copies aside)


def _work(cell_mode: str, train: int, total: int, epochs: int) -> int:
    """Images a cell pushes through its network: every split once for `features`, else train images x epochs."""
    return total if cell_mode == TransferMode.FEATURES.value else train * max(1, epochs)


def _rates(results: list[Result]) -> dict[tuple[str, int, str, str], float]:
    """Seconds per image of work, by kind of cell (model, input size, mode, precision), averaged over the results
    that ran (in any version of the suite: the cost of a kind of cell carries over)."""
    seen: dict[tuple[str, int, str, str], list[float]] = defaultdict(list)
    for r in results:
        d, t, p = r.provenance.duration_s, r.training, r.data
        if d is None or p is None:
            continue
        epochs = t.epochs_run if t is not None and t.epochs_run else r.cell.protocol.epochs
        work = _work(r.cell.mode, p.n.get("train", 0), sum(p.n.values()), epochs)
        if work > 0:
            seen[r.cell.model, r.cell.input_size, r.cell.mode, r.cell.protocol.precision].append(d / work)
    return {k: sum(v) / len(v) for k, v in seen.items()}


def _sans_versions(config: dict[str, Any]) -> str:
    """A cell's identity but for the code versions: matches a cell to its result from older code."""
    return json.dumps({k: v for k, v in config.items() if k != "versions"}, sort_keys=True)


def downloaded(arch: str, tag: str) -> bool:
    """Whether `arch`'s `tag` weights are downloaded (Hugging Face Hub / torchvision): an offline run cannot have
    them."""
    weights = get_spec(arch).weights.get(tag)
    return weights is not None and weights.source.startswith(NETWORK_SOURCES)


def _needs_network(cell: Cell) -> bool:
    """Its weights are downloaded (a cell that starts from another cell's kept model downloads nothing)."""
    return cell.tag != "random" and not cell.init_from and downloaded(cell.arch, cell.tag)


@dataclass
class _Group:
    datasets: set[str]
    seeds: set[int]
    cells: int = 0
    seconds: float | None = 0.0


def missing(store: ResultStore, suite: Suite) -> tuple[int, int, dict[tuple[str, int, str, str], _Group]]:
    """(cells in the suite, cells with an `ok` result, the others grouped by model / input size / mode / why)."""
    stored = list(store.results(suite.name))  # read once: the suite's results, and the run times of all of them
    results = [r for r in stored if r.suite == suite.id]
    done = {r.key for r in results if r.status == "ok"}
    tried = {r.key for r in results} - done
    older = {_sans_versions(r.cell.config()) for r in results if r.status == "ok" and not current(r)}
    rates = _rates([r for r in stored if r.status == "ok"])
    cells = suite.cells()
    groups: dict[tuple[str, int, str, str], _Group] = {}
    for c in cells:
        if c.key in done:
            continue
        why = ("failed or skipped (reason below)" if c.key in tried else
               "to re-run: its result is from older code" if _sans_versions(c.config()) in older else
               ("waits for its source cell" if c.init_from not in done else "not run") if c.init_from else
               "needs the network for its pretrained weights" if _needs_network(c) else
               "needs the user's own copy of the data (not redistributable)"
               if not DATASETS.get(c.dataset).redistributable else "not run")
        g = groups.setdefault((c.model, c.input_size, c.mode.value, why), _Group(set(), set()))
        g.datasets.add(c.dataset)
        g.seeds.add(c.seed)
        g.cells += 1
        rate = rates.get((c.model, c.input_size, c.mode.value, c.protocol.precision))
        if rate is None or g.seconds is None:
            g.seconds = None
            continue
        n = DATASETS.get(c.dataset).n_samples
        g.seconds += rate * _work(c.mode.value, n.get("train", 0), sum(n.values()), c.protocol.epochs)
    return len(cells), len(done & {c.key for c in cells}), groups


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "no estimate (no cell of this kind has run)"
    return f"~{seconds / 3600:.1f} CPU-hours here" if seconds >= 360 else f"~{seconds / 60:.0f} CPU-min here"


def markdown(store: ResultStore, suite: Suite) -> list[str]:
    """The board's coverage section."""
    total, ok, groups = missing(store, suite)
    head = f"{ok} of the suite's {total} cells have a result on this board."
    if not groups:
        return ["## Coverage", "", head, ""]
    lines = ["## Coverage", "", head + " The others, grouped; estimates come from this store's own run times "
             "(seconds per image and epoch of the same model, input size, mode and precision, times the dataset's "
             "training images and the protocol's epochs), an upper bound, as early stopping ends most cells sooner.",
             "", "| model | input | mode | datasets | seeds | cells | why not | estimate |",
             "|---|---:|---|---|---|---:|---|---|"]
    for (model, size, mode, why), g in sorted(groups.items()):
        lines.append(f"| {model} | {size} px | {mode} | {', '.join(sorted(g.datasets))} | "
                     f"{', '.join(map(str, sorted(g.seeds)))} | {g.cells} | {why} | {_hours(g.seconds)} |")
    return lines + [""]
