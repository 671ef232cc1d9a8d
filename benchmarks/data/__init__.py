"""Registered datasets. Importing this package fills `DATASETS`: MedMNIST 2D (from the medmnist package's INFO,
when the `[medmnist]` extra is installed), the segmentation datasets (`seg/`, one file each) and the test-only
synthetic sets."""

from benchmarks.data import seg, synthetic
from benchmarks.data._spec import DATASETS, ChecksumError, DatasetNotFoundError, DatasetSpec, Split, Task, file_md5
from zoo.extras import has, install_hint

if has("medmnist"):
    from benchmarks.data import medmnist  # noqa: F401 -- registers the MedMNIST datasets
else:  # its facts (names, sizes, md5s) come from the medmnist package
    DATASETS.absent["*mnist*"] = f"the MedMNIST datasets need the medmnist package: {install_hint('medmnist')}"

__all__ = ["DATASETS", "ChecksumError", "DatasetNotFoundError", "DatasetSpec", "Split", "Task", "file_md5",
           "seg", "synthetic"]
