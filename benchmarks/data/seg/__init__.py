"""Segmentation datasets, one file each (CHASE_DB1 and DRIVE retinal vessels, ISBI-2012 EM membranes). Importing
this package imports every public module in this folder, and each registers its dataset (`SEG_DATASETS` for its
facts, `DATASETS` for its arrays): adding a dataset is adding one file (docs/datasets.md)."""

import importlib
import pkgutil

from benchmarks.data.seg._base import (
    SEG_DATASETS,
    SegDataset,
    SegmentationDataError,
    SegSample,
    dataset_dir,
    load_samples,
    seg_dataset,
)

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
    importlib.import_module(f"{__name__}.{_module}")

from benchmarks.data.seg.chase_db1 import chase_fov
from benchmarks.data.seg.drive import DriveTestLabelsMissingWarning, drive_has_test_labels

__all__ = ["SEG_DATASETS", "DriveTestLabelsMissingWarning", "SegDataset", "SegSample", "SegmentationDataError",
           "chase_fov", "dataset_dir", "drive_has_test_labels", "load_samples", "seg_dataset"]
