"""The runner alone (no CLI): the events it yields, the store locks it takes, failures it reports; on tiny
synthetic `features` cells."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from filelock import FileLock

from benchmarks import runner
from benchmarks.executors import Outcome
from benchmarks.results import ResultStore
from benchmarks.suites import Cell, Grid, Suite
from zoo import MedzooError, TransferMode

TINY = Suite(name="runner-tiny", version="1", description="Synthetic feature cells, for the runner tests.", grids=(
    Grid(models=("resnet18_28.random",), datasets=("synthetic_binary", "synthetic_multiclass"),
         modes=(TransferMode.FEATURES,)),
))


@pytest.fixture()
def store(tmp_path: Path) -> ResultStore:
    return ResultStore(tmp_path / "results", tmp_path / "ckpt")


def _kinds(events: Iterable[runner.Event]) -> list[str]:
    """Event class names, progress reports left out (their number depends on the batch count)."""
    return [type(e).__name__ for e in events if not isinstance(e, runner.Progress)]


def test_a_run_stores_every_cell_and_a_second_run_has_nothing_to_do(store: ResultStore) -> None:
    cells = TINY.cells()
    events = list(runner.run(cells, store, feature_cache=False))
    assert events[0] == runner.Planned(total=2, done=0, todo=2)
    assert _kinds(events) == ["Planned", "Started", "Finished", "Started", "Finished"]
    assert any(isinstance(e, runner.Progress) and e.kind == "features" for e in events)  # live, from the cell
    finished = [e for e in events if isinstance(e, runner.Finished)]
    assert [e.cell for e in finished] == cells and all(e.result.status == "ok" for e in finished)
    assert all(store.done(c) for c in cells)
    assert list(runner.run(cells, store)) == [runner.Planned(total=2, done=2, todo=0)]


def test_a_cell_locked_by_another_holder_is_deferred_then_waited_for(store: ResultStore) -> None:
    first, second = TINY.cells()
    other = FileLock(store.root / ".locks" / f"{second.key}.lock")  # another run's claim (its own file handle)
    other.acquire()
    seen: list[runner.Event] = []
    try:
        for e in runner.run([first, second], store, feature_cache=False):
            seen.append(e)
            if isinstance(e, runner.Waiting):
                assert store.done(first) and not store.done(second)
                other.release()  # the other run gives up without storing: this run computes the cell
    finally:
        if other.is_locked:
            other.release()
    assert _kinds(seen) == ["Planned", "Started", "Finished", "Waiting", "Started", "Finished"]
    assert next(e for e in seen if isinstance(e, runner.Waiting)).n == 1
    assert [e.cell for e in seen if isinstance(e, runner.Started)] == [first, second]
    assert store.done(second)
    for cell in (first, second):  # nothing left claimed
        lock = store.lock(cell)
        lock.acquire(timeout=0)
        lock.release()


class _Failing:
    """An executor that, like Ray, submits every cell first, and whose cells all fail (as a crashed cell does)."""

    name = "failing"
    live_progress = False

    def map(self, fn: object, cells: Iterable[Cell]) -> Iterator[Outcome]:
        for cell in list(cells):  # submission claims them all
            yield Outcome(cell, None, "RuntimeError: boom")


def test_failed_cells_are_reported_not_stored_and_their_locks_freed(store: ResultStore) -> None:
    cells = TINY.cells()
    events = list(runner.run(cells, store, _Failing()))
    assert _kinds(events) == ["Planned", "Started", "Started", "Failed", "Failed"]  # all claimed at submission
    assert [e.error for e in events if isinstance(e, runner.Failed)] == ["RuntimeError: boom"] * 2
    assert not any(store.done(c) for c in cells) and not (store.root / TINY.name).exists()
    for cell in cells:
        lock = store.lock(cell)
        lock.acquire(timeout=0)
        lock.release()


def test_a_bad_selection_is_one_medzoo_error() -> None:
    with pytest.raises(MedzooError, match="unknown mode 'featurs'"):
        runner.select_cells(TINY, modes=["featurs"])
    with pytest.raises(MedzooError, match="runner-tiny@1 has no such dataset"):
        runner.select_cells(TINY, datasets=["nosuchmnist"])
