"""Registered datasets. Importing this package fills `DATASETS` (MedMNIST 2D from the medmnist package's INFO)."""

from benchmarks.datasets import medmnist
from benchmarks.datasets import segmentation  # noqa: F401  (registers chase_db1, isbi2012, drive)
from benchmarks.datasets import synthetic  # noqa: F401  (registers the test-only synthetic_* sets)
from benchmarks.datasets._spec import DATASETS, DatasetNotFoundError, DatasetSpec, Split, Task

__all__ = ["DATASETS", "DatasetNotFoundError", "DatasetSpec", "Split", "Task", "medmnist"]
