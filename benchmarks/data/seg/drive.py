"""DRIVE retinal vessels (Staal et al., IEEE TMI 2004): 40 fundus images (565x584) with official FOV masks. DRIVE may
not be redistributed: users download it themselves; its loader is tested on a synthetic folder in its layout.

With the official test labels, test = the 20 official test images (01–20), val = training images 35–36, train = the
other 18 training images. Downloads without `test/1st_manual` get a `DriveTestLabelsMissingWarning` and a held-out
split of `training/`: 21–34 train, 35–36 val, 37–40 test (`drive_has_test_labels` says which protocol applies).
Scored as vessels, like CHASE_DB1.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from benchmarks.data._spec import Split
from benchmarks.data.seg._base import Item, SegDataset, SegSample, binary, dataset_dir, register, rgb, sample
from benchmarks.data.seg.chase_db1 import VESSEL_COLUMNS

SPLIT: dict[Split, tuple[int, ...]] = {Split.TRAIN: (*range(21, 35), *range(37, 41)), Split.VAL: (35, 36),
                                       Split.TEST: tuple(range(1, 21))}
"""Image numbers per split with the official test labels (01–20 are the official test images)."""
HELD_OUT_SPLIT: dict[Split, tuple[int, ...]] = {Split.TRAIN: tuple(range(21, 35)), Split.VAL: (35, 36),
                                                Split.TEST: (37, 38, 39, 40)}
"""Image numbers per split when `test/1st_manual` is missing: everything comes from `training/`."""


class DriveTestLabelsMissingWarning(UserWarning):
    """DRIVE's `test/1st_manual` is missing: test metrics come from held-out training images 37–40."""


def drive_has_test_labels(root: Path | str | None = None) -> bool:
    """Whether DRIVE's official test labels (`test/1st_manual/*_manual1.gif`) are there; without them the test
    split is the held-out training images 37–40 (`HELD_OUT_SPLIT`)."""
    return _official(dataset_dir("drive", root))


def _official(d: Path) -> bool:
    return any((d / "test" / "1st_manual").glob("*_manual1.gif"))


def _item(d: Path, n: int) -> Item:
    part = "training" if n > 20 else "test"
    manual2 = d / part / "2nd_manual" / f"{n:02d}_manual2.gif"
    return Item(f"{n:02d}_{part}", f"{n:02d}", d / part / "images" / f"{n:02d}_{part}.tif",
                d / part / "1st_manual" / f"{n:02d}_manual1.gif", fov=d / part / "mask" / f"{n:02d}_{part}_mask.gif",
                mask2=manual2 if manual2.is_file() else None)


def _items(d: Path) -> dict[Split, list[Item]]:
    split = SPLIT if _official(d) else HELD_OUT_SPLIT
    return {s: [_item(d, n) for n in numbers] for s, numbers in split.items()}


def _read(it: Item) -> SegSample:
    assert it.fov is not None  # every DRIVE item has its official FOV mask
    return sample(it, rgb(it.image), binary(it.mask), binary(it.fov), None if it.mask2 is None else binary(it.mask2))


def _warn_without_test_labels(d: Path) -> None:
    if not _official(d):
        warnings.warn(DriveTestLabelsMissingWarning(
            f"DRIVE in {d} has no test/1st_manual/*_manual1.gif (the official test labels), so the test split is "
            f"training images 37–40 (val 35–36, train 21–34), not the official test set: results are not "
            f"comparable with papers' DRIVE test numbers."), stacklevel=4)


DRIVE = register(SegDataset(
    name="drive", title="DRIVE",
    description="DRIVE retinal vessels: 40 fundus images (565x584), official FOV masks; without the official test "
                "labels: 14 / 2 / 4 held out from training/",
    folders=("drive", "DRIVE"), native_size=584, n_channels=3, labels={"0": "background", "1": "vessel"},
    n_samples={"train": 18, "val": 2, "test": 20},
    license="DRIVE terms: no copying or redistribution, no unauthorized commercial use (get it from its site)",
    citation="Staal et al., Ridge-based vessel segmentation in color images of the retina, IEEE Trans. Med. "
             "Imaging 23(4):501-509 (2004), doi:10.1109/TMI.2004.825627",
    marker=lambda d: (d / "training" / "images").is_dir(),
    expected="training/images/21_training.tif … 40_training.tif, training/1st_manual/<N>_manual1.gif, "
             "training/mask/<N>_training_mask.gif, and test/images/01_test.tif … 20_test.tif, "
             "test/mask/<N>_test_mask.gif, test/1st_manual/<N>_manual1.gif (test labels optional)",
    download="DRIVE may not be redistributed: register and download it from its official site "
             "https://drive.grand-challenge.org/ and unzip training/ and test/ there",
    items=_items, read=_read, scorer="pooled", columns=VESSEL_COLUMNS, headline="f1",
    scope="pooled over the test images' pixels inside the official FOV masks (whole image: every pixel)",
    on_found=_warn_without_test_labels, redistributable=False))
