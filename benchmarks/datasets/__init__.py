"""Registered datasets. Importing this package fills `DATASETS` (MedMNIST 2D from the medmnist package's INFO)."""

from benchmarks.datasets import medmnist
from benchmarks.datasets._spec import DATASETS, DatasetNotFoundError, DatasetSpec, Split, Task

__all__ = ["DATASETS", "DatasetNotFoundError", "DatasetSpec", "Split", "Task", "medmnist"]
