"""Re-score stored results from their outputs: what anyone auditing a board runs, and what the tests run on the
whole committed store. Each outputs kind has one re-scorer; each returns the metrics section the cell should have
stored, computed by the same functions the cell used."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.data import Split, Task
from benchmarks.results.schema import MetricsRecord, Result


def _classification(result: Result, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    from benchmarks.cells.classification import score_outputs

    assert result.data is not None
    task = Task(result.data.task)
    y = {Split(s): arrays[f"{s}/labels"] for s in ("val", "test")}
    logits = {Split(s): arrays[f"{s}/logits"] for s in ("val", "test")}
    return score_outputs(task, y, logits, result.cell.seed)[0]


def _rounded(result: Result, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """A migrated schema-1 result: test metrics at the threshold schema 1 recorded (its validation is gone)."""
    from benchmarks.cells.classification import test_section

    assert result.data is not None and result.metrics is not None
    return test_section(Task(result.data.task), arrays["test/labels"], arrays["test/probabilities"],
                        result.metrics.test.get("threshold"), result.cell.seed, tuple(result.metrics.ci)) | {"val": {}}


def _segmentation(result: Result, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    from benchmarks.cells.segmentation import SegOutputs, score

    assert result.data is not None and result.data.test_images is not None
    n_val = result.data.n["val"]
    outputs = {Split.TEST: SegOutputs.from_arrays(arrays, "test", result.data.test_images),
               Split.VAL: SegOutputs.from_arrays(arrays, "val", [str(i) for i in range(n_val)])}
    return score(result.cell.dataset, outputs)


RESCORERS: dict[str, Callable[[Result, dict[str, np.ndarray]], dict[str, Any]]] = {
    "classification-logits": _classification,
    "rounded-probabilities": _rounded,
    "segmentation-histograms": _segmentation,
}


def rescore(result: Result, arrays: dict[str, np.ndarray]) -> MetricsRecord:
    """The metrics section re-computed from `arrays` (the result's outputs); equal to `result.metrics` for every
    result the harness wrote."""
    if result.outputs is None:
        raise ValueError(f"{result.key} has no outputs to re-score")
    return MetricsRecord.model_validate(RESCORERS[result.outputs.kind](result, arrays))
