"""Where cells run: in this process (`local`, the default) or as Ray tasks on a cluster (`ray`).

An executor maps a cell function over cells and yields one `Outcome` per cell as it finishes; it never writes
results (the runner hands them to the store). Cells are independent, so a cluster engine schedules them; medzoo does not
schedule anything itself. Faults: a Ray worker that dies (killed, out of memory) is retried by Ray up to `retries`
times; after that, and for any exception a cell raises, the outcome is a failure with the reason — never a result.
Errors the user must fix (`MedzooError`: data, weights, input) stop the run, as locally.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import torch

from benchmarks.results.schema import Result
from benchmarks.suites import Cell
from zoo import MedzooError
from zoo.extras import require

CellFn = Callable[[Cell], Result]


@dataclass(frozen=True)
class Outcome:
    cell: Cell
    result: Result | None  # None: the cell failed
    error: str = ""


class Executor(Protocol):
    name: str
    live_progress: bool  # cells run in this process, so their progress callbacks can be reported while they run

    def map(self, fn: CellFn, cells: Iterable[Cell]) -> Iterator[Outcome]: ...


class LocalExecutor:
    """One cell after another in this process (progress can be reported live)."""

    name = "local"
    live_progress = True

    def map(self, fn: CellFn, cells: Iterable[Cell]) -> Iterator[Outcome]:
        for cell in cells:
            try:
                yield Outcome(cell, fn(cell))
            except MedzooError:
                raise
            except Exception as e:  # one cell's crash (out of memory, a bug) must not lose the others
                yield Outcome(cell, None, f"{type(e).__name__}: {e}")


def _in_worker(fn: CellFn, cell: Cell, threads: int) -> Result:
    torch.set_num_threads(threads)  # a task gets `threads` cores; torch's default would take the whole node
    return fn(cell)


class RayExecutor:
    """Each cell a Ray task with its own resource request, on the cluster at `address` (`auto`: a running cluster
    found from this node; None: `$RAY_ADDRESS` or a running local cluster, else a new local Ray for this run).
    Needs `pip install medzoo[ray]`."""

    name = "ray"
    live_progress = False  # progress callbacks cannot travel to Ray workers: only finished cells are counted

    def __init__(self, address: str | None = "auto", cpus: float = 1.0, gpus: float = 0.0, retries: int = 2,
                 threads: int | None = None) -> None:
        if retries < 0 or cpus <= 0 or gpus < 0:
            raise ValueError("retries and gpus must be >= 0 and cpus > 0")
        self.address, self.cpus, self.gpus, self.retries = address, cpus, gpus, retries
        self.threads = threads or max(1, int(cpus))

    def map(self, fn: CellFn, cells: Iterable[Cell]) -> Iterator[Outcome]:
        ray = require("ray", "--executor ray")
        errors = require("ray.exceptions", "--executor ray")
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError) as e:
                raise MedzooError(f"cannot join the Ray cluster at {self.address!r} ({e}). Start one with `ray start "
                                  f"--head`, or give its address with --address HOST:PORT") from None
        have = ray.cluster_resources()
        for what, need in (("CPU", self.cpus), ("GPU", self.gpus)):
            if need > have.get(what, 0):  # the task would wait forever for a node that can take it
                raise MedzooError(f"each cell asks for {need:g} {what}(s) but the Ray cluster has {have.get(what, 0):g}"
                                  f": lower --{what.lower()}s-per-cell or add nodes")
        task = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=self.retries,
                          retry_exceptions=False)(_in_worker)
        pending = {task.remote(fn, cell, self.threads): cell for cell in cells}
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            cell = pending.pop(ref)
            try:
                result = ray.get(ref)
            except errors.RayTaskError as e:  # the cell raised: a user error stops the run, anything else fails the cell
                if isinstance(e.cause, MedzooError):
                    for other in pending:
                        ray.cancel(other, force=True)
                    raise e.cause from None
                yield Outcome(cell, None, f"{type(e.cause).__name__}: {e.cause}".splitlines()[0])
            except errors.RayError as e:  # the worker died (killed, out of memory) on every attempt
                yield Outcome(cell, None, f"{type(e).__name__} after {self.retries + 1} attempts: "
                                          f"{str(e).splitlines()[0]}")
            else:
                yield Outcome(cell, result)


EXECUTORS = ("local", "ray")


def make_executor(name: str = "local", address: str | None = None, cpus: float = 1.0, gpus: float = 0.0,
                  retries: int = 2) -> Executor:
    """The executor `name` (`EXECUTORS`); a `MedzooError` for options it does not take."""
    if name == "local":
        if address:
            raise MedzooError("--address is for --executor ray")
        return LocalExecutor()
    if name != "ray":
        raise MedzooError(f"unknown executor {name!r}: one of {', '.join(EXECUTORS)}")
    try:
        return RayExecutor(address=address or None, cpus=cpus, gpus=gpus, retries=retries)
    except ValueError as e:
        raise MedzooError(str(e)) from None
