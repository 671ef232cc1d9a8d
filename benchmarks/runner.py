"""Running cells into a results store: which cells (a suite's, filtered), which of them still need running, who
computes each (a per-cell store lock, so two runs on one store never compute a cell twice), in what order (cells
that start from another cell's model after the others), where (an executor: local or Ray), and which models are
kept. Prints nothing: `run` yields typed events (`Planned`, `Started`, `Progress`, `Finished`, `Failed`, `Waiting`,
`AlreadyDone`) that the CLI draws; results are written only through the store (`store.write`).

With an executor that runs cells in this process (`live_progress`), the cells run in a worker thread so their
progress callbacks arrive as `Progress` events while they run; every lock is taken and released in that one thread.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from benchmarks.executors import Executor, LocalExecutor, Outcome
from benchmarks.results import ResultStore
from benchmarks.results.schema import Result
from benchmarks.suites import Cell, Suite, select
from zoo import MedzooError, TransferMode


# --- events --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Planned:
    """The selection against the store: `total` cells, `done` already stored, `todo` to run (0: nothing to do)."""

    total: int
    done: int
    todo: int


@dataclass(frozen=True)
class Started:
    """This run claimed `cell` (holds its lock) and hands it to the executor (on Ray: at submission)."""

    cell: Cell


@dataclass(frozen=True)
class Progress:
    """A running cell's progress callback (`kind`: epoch, batch or features); local executor only."""

    kind: str
    completed: int
    total: int
    text: str


@dataclass(frozen=True)
class Finished:
    """`cell` ran and its `result` (ok or skipped) is in the store."""

    cell: Cell
    result: Result


@dataclass(frozen=True)
class Failed:
    """`cell` raised (or its worker died every time); nothing stored, its epoch checkpoint kept for the next run."""

    cell: Cell
    error: str


@dataclass(frozen=True)
class AlreadyDone:
    """Another run on the same store stored `cell` while this one was waiting to claim it."""

    cell: Cell


@dataclass(frozen=True)
class Waiting:
    """`n` cells are locked by another run on this store: this run now waits for them (and runs any left over)."""

    n: int


Event = Planned | Started | Progress | Finished | Failed | AlreadyDone | Waiting


# --- selection -----------------------------------------------------------------------------------------------------
def select_cells(suite: Suite, models: list[str] | None = None, datasets: list[str] | None = None,
                 modes: list[str] | None = None, sizes: list[int] | None = None, seeds: list[int] | None = None,
                 epochs: int | None = None, precision: str | None = None) -> list[Cell]:
    """The suite's cells through the filters (`suites.select`); a bad filter or an empty selection is a
    `MedzooError`."""
    _check_seeds_modes(seeds, modes)
    if epochs is not None and epochs < 1:
        raise MedzooError(f"--epochs {epochs}: give at least 1 epoch")
    _check_filters(suite, models, datasets, sizes)
    try:
        cells = select(suite, models=models, datasets=datasets, modes=modes, sizes=sizes, seeds=seeds, epochs=epochs,
                       precision=precision)
    except ValueError as e:
        raise MedzooError(str(e)) from None
    if not cells:
        raise MedzooError(f"no cell of {suite.id} matches the filters (`medzoo ls suites`, `medzoo ls`)")
    return cells


def _check_seeds_modes(seeds: list[int] | None, modes: list[str] | None) -> None:
    """One error for a negative seed or an unknown mode, before any cell (suites and --images alike)."""
    if any(s < 0 for s in seeds or ()):
        raise MedzooError(f"--seeds {' '.join(map(str, seeds or ()))}: seeds are whole numbers >= 0")
    known = [m.value for m in TransferMode]
    for m in modes or ():
        if m not in known:
            raise MedzooError(f"unknown mode {m!r}: one of {', '.join(known)}")


def _check_filters(suite: Suite, models: list[str] | None, datasets: list[str] | None,
                   sizes: list[int] | None) -> None:
    """Each filter value must match some cell of the suite on its own: a typo is named with what the suite has,
    not reported as an empty selection."""
    import difflib
    import fnmatch

    cells = suite.cells()
    have = {"dataset": sorted({c.dataset for c in cells}), "size": sorted({c.size for c in cells}),
            "model": sorted({c.model for c in cells} | {c.arch for c in cells})}
    for m in models or ():
        if not any(fnmatch.fnmatchcase(n, m) for n in have["model"]):
            close = difflib.get_close_matches(m, have["model"], n=3)
            raise MedzooError(f"--models {m}: no model of {suite.id} matches" + (
                f". Did you mean: {', '.join(close)}?" if close else f" (it has {', '.join(have['model'])})"))
    for d in datasets or ():
        if d not in have["dataset"]:
            close = difflib.get_close_matches(d, have["dataset"], n=3)
            raise MedzooError(f"--datasets {d}: {suite.id} has no such dataset" + (
                f". Did you mean: {', '.join(close)}?" if close else f" (it has {', '.join(have['dataset'])})"))
    for z in sizes or ():
        if z not in have["size"]:
            raise MedzooError(f"--sizes {z}: {suite.id} has sizes {', '.join(map(str, have['size']))}")


def model_names(names: list[str]) -> tuple[str, ...]:
    """`arch[.tag]` names as cells name models: a bare arch takes its default weights, or `random` without any;
    an unknown arch or tag is a did-you-mean error before anything runs."""
    from zoo import get_spec, resolve

    out = []
    for name in names:
        arch, _, tag = name.partition(".")
        spec = get_spec(arch)
        if tag and tag != "random":
            resolve(name)
        out.append(f"{arch}.{tag or spec.default_tag or 'random'}")
    return tuple(dict.fromkeys(out))


def images_run(path: str, *, task: str | None, resize: str, models: list[str] | None, modes: list[str] | None,
               sizes: list[int] | None, seeds: list[int] | None, allow_duplicates: bool = False) -> tuple[Suite, str]:
    """A user's images registered as a dataset (named by the folder/CSV and its content hash, so a changed folder is
    another dataset) and the ad-hoc suite over it (`suites.images_suite`); and the dataset's `reading`."""
    from dataclasses import replace
    from pathlib import Path

    from benchmarks.data import DATASETS
    from benchmarks.data.folder import folder_dataset
    from benchmarks.suites import IMAGES_DEFAULTS, images_suite

    _check_seeds_modes(seeds, modes)
    if any(s < 1 for s in sizes or ()):
        raise MedzooError(f"--sizes {' '.join(map(str, sizes or ()))}: sizes are pixels >= 1")
    chosen_models = model_names(models or list(IMAGES_DEFAULTS["models"]))
    chosen_sizes = tuple(sizes or IMAGES_DEFAULTS["sizes"])
    ds = folder_dataset(path, task=task, resize=resize, mixed_size=max(chosen_sizes),  # type: ignore[arg-type]
                        allow_duplicates=allow_duplicates)
    name = f"{Path(path).expanduser().resolve().stem}-{ds.fingerprint(ds.sizes[0], None)[:8]}"
    if name not in DATASETS:
        DATASETS.add(replace(ds, name=name))
    suite = images_suite(name, ds.sizes[0], chosen_models, tuple(modes or IMAGES_DEFAULTS["modes"]), chosen_sizes,
                         tuple(seeds if seeds is not None else IMAGES_DEFAULTS["seeds"]))
    return suite, ds.reading


def check_paths(data_dir: str | None) -> None:
    """A `MedzooError` for a --data-dir that is not a folder — before any cell starts."""
    from pathlib import Path

    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise MedzooError(f"--data-dir {data_dir}: no such folder. Give the folder that holds the dataset files (e.g. "
                          f"breastmnist.npz), or leave it out to use $MEDZOO_DATA_DIR, then ~/.medmnist")


def check_device(device: str, executor: Executor, gpus_per_cell: float = 0.0) -> None:
    """A `MedzooError` for a device the cells could not use — before any cell starts."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise MedzooError(f"--device {device!r}: medzoo runs on cpu, cuda or cuda:N")
    if executor.name == "ray" and device.startswith("cuda") and (gpus_per_cell <= 0 or device != "cuda"):
        raise MedzooError("on Ray, give --device cuda (each task sees only its own GPUs) with --gpus-per-cell 1 (or "
                          "a fraction): without a GPU request Ray hides every GPU from the task")
    if dev.type == "cuda" and executor.name == "local":
        if not torch.cuda.is_available():
            raise MedzooError(f"--device {device}: no CUDA device is visible to torch {torch.__version__}; run with "
                              f"--device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise MedzooError(f"--device {device}: torch sees {torch.cuda.device_count()} CUDA device(s), "
                              f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")


# --- running -------------------------------------------------------------------------------------------------------
def _run_keeping(cell: Cell, keep: bool | frozenset[str], **kwargs: Any) -> Result:
    """`run_cell`, keeping the model when asked to (`--save-checkpoints`) or when another cell starts from it."""
    from benchmarks.cells import run_cell

    return run_cell(cell, keep_model=keep is True or cell.key in keep, **kwargs)


class _Cancelled(BaseException):
    """The consumer stopped listening: the worker thread stops at the cell's next progress report."""


class _Run:
    def __init__(self, cells: list[Cell], store: ResultStore, executor: Executor, force: bool,
                 keep: bool | frozenset[str], cell_kwargs: dict[str, Any]) -> None:
        self.cells, self.store, self.executor, self.force = cells, store, executor, force
        self.keep, self.cell_kwargs = keep, cell_kwargs
        self.pending: deque[Event] = deque()
        self.side: Any = self.pending.append  # where events raised inside callbacks go (`threaded`: its queue)
        self.stop = threading.Event()
        self.deferred: list[Cell] = []
        self.held: dict[str, Any] = {}

    def report(self, kind: str, completed: int, total: int, text: str) -> None:
        if self.stop.is_set():
            raise _Cancelled
        self.side(Progress(kind, completed, total, text))

    def drain(self) -> Iterator[Event]:
        while self.pending:
            yield self.pending.popleft()

    def _acquire(self, lock: Any, wait: bool) -> bool:
        from filelock import Timeout

        while True:
            try:
                lock.acquire(timeout=0.5 if wait else 0)
                return True
            except Timeout:
                if not wait:
                    return False
            if self.stop.is_set():
                raise _Cancelled

    def claimed(self, candidates: list[Cell], wait: bool) -> Iterator[Cell]:
        """Cells this run computes: each under its store lock, taken just before the executor needs it (one at a
        time locally; all at submission on Ray). A cell locked by another run is deferred, or waited for."""
        for cell in candidates:
            if self.stop.is_set():
                raise _Cancelled
            lock = self.store.lock(cell)
            if not self._acquire(lock, wait):
                self.deferred.append(cell)
                continue
            if not self.force and self.store.done(cell):  # finished meanwhile by another run on this store
                lock.release()
                self.side(AlreadyDone(cell))
                continue
            self.held[cell.key] = lock
            self.side(Started(cell))
            yield cell

    def collect(self, outcomes: Iterable[Outcome]) -> Iterator[Event]:
        for o in outcomes:
            yield from self.drain()
            try:
                if o.result is not None:
                    self.store.write(o.result, o.cell)
            finally:
                self.held.pop(o.cell.key).release()
            yield Failed(o.cell, o.error) if o.result is None else Finished(o.cell, o.result)

    def events(self, todo: list[Cell]) -> Iterator[Event]:
        fn = partial(_run_keeping, keep=self.keep, store=self.store, **self.cell_kwargs,
                     **({"report": self.report} if self.executor.live_progress else {}))
        try:  # cells that start from another cell's model go after every cell that does not
            for wave in ([c for c in todo if not c.init_from], [c for c in todo if c.init_from]):
                yield from self.collect(self.executor.map(fn, self.claimed(wave, wait=False)))
                yield from self.drain()
            if self.deferred:
                waiting, self.deferred = self.deferred, []
                yield Waiting(len(waiting))
                yield from self.collect(self.executor.map(fn, self.claimed(waiting, wait=True)))
                yield from self.drain()
        finally:  # an error that stops the run frees the cells this run still holds
            for lock in self.held.values():
                lock.release()
            self.held.clear()

    def threaded(self, todo: list[Cell]) -> Iterator[Event]:
        """`events` iterated in a worker thread, so that progress reports arrive while a cell runs."""
        q: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.side = lambda e: q.put(("event", e))

        def work() -> None:
            try:
                for e in self.events(todo):
                    q.put(("event", e))
            except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises it
                q.put(("raise", e))
            else:
                q.put(("end", None))

        worker = threading.Thread(target=work, name="medzoo-runner", daemon=True)
        worker.start()
        try:
            while True:
                what, item = q.get()
                if what == "event":
                    yield item
                elif what == "raise":
                    raise item
                else:
                    break
        finally:
            self.stop.set()  # a consumer that stops early (an error, Ctrl-C) stops the worker at its next report
            worker.join(timeout=60)


def run(cells: list[Cell], store: ResultStore, executor: Executor | None = None, *, force: bool = False,
        save_checkpoints: bool = False, suite: Suite | None = None, data_dir: Any = None, device: str = "cpu",
        feature_cache: bool = True) -> Iterator[Event]:
    """Run the `cells` not yet in `store` (all of them with `force`, which also drops their epoch checkpoints) on
    `executor` (default: local), writing each result to the store as it arrives, and yield what happens. Models are
    kept for every finetune/scratch cell with `save_checkpoints`, else only for cells another cell of the selection
    (or of `suite`) starts from. A `MedzooError` of a cell (data, weights, input) stops the run; any other error
    fails that cell only (a `Failed` event) and the run goes on."""
    from benchmarks.cells.feature_cache import FeatureCache

    executor = executor or LocalExecutor()
    if force:
        for c in cells:
            store.clear_checkpoint(c)
    todo = [c for c in cells if force or not store.done(c)]
    yield Planned(total=len(cells), done=len(cells) - len(todo), todo=len(todo))
    if not todo:
        return
    sources = frozenset(c.init_from for c in (suite.cells() if suite else []) + cells if c.init_from)
    cell_kwargs = {"data_dir": data_dir, "device": device, "cache": FeatureCache() if feature_cache else None}
    r = _Run(cells, store, executor, force, True if save_checkpoints else sources, cell_kwargs)
    yield from (r.threaded(todo) if executor.live_progress else r.events(todo))
