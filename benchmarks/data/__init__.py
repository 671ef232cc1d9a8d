"""Registered datasets. Importing this package fills `DATASETS`: MedMNIST 2D (from the medmnist package's INFO),
the segmentation datasets (`seg/`, one file each) and the test-only synthetic sets."""

from benchmarks.data import medmnist, seg, synthetic
from benchmarks.data._spec import DATASETS, ChecksumError, DatasetNotFoundError, DatasetSpec, Split, Task, file_md5

__all__ = ["DATASETS", "ChecksumError", "DatasetNotFoundError", "DatasetSpec", "Split", "Task", "file_md5",
           "medmnist", "seg", "synthetic"]
