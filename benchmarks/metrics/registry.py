"""Every metric's facts, declared once: its direction (boards rank and mark by it), the tasks it is defined for,
how to compute it (classification: `evaluate` and the bootstraps call `fn`; segmentation metrics are computed by
the dataset's scorer), and the column it gets on classification boards.

Registering a classification metric with a `fn` and a `column` is the whole change: cells compute it into every new
result, and classification boards show it (results stored before it existed show "–").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from zoo import Task

# (labels, scores, task, threshold) → value, on arrays `benchmarks.metrics.classification` has validated
MetricFn = Callable[[np.ndarray, np.ndarray, Task, "float | None"], float]


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    tasks: frozenset[Task]
    fn: MetricFn | None = None  # None: computed by a segmentation scorer, not by `evaluate`
    column: str | None = None  # its header on classification boards (None: not a column there)
    needs_threshold: bool = False  # binary operating-point metrics: only with a threshold chosen on validation


METRICS: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    """Add a metric; a name is registered once (two definitions of one name would silently disagree)."""
    if metric.name in METRICS:
        raise ValueError(f"metric {metric.name!r} is already registered")
    METRICS[metric.name] = metric
    return metric


def higher_is_better(name: str) -> bool:
    """A registered metric's direction (boards sort and mark by it)."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known: {sorted(METRICS)}")
    return METRICS[name].higher_is_better
