"""CHASE_DB1 retinal vessels (Fraz et al., IEEE TBME 2012): 28 fundus images (999x960), both eyes of 14 children,
two human observers. CC BY 4.0.

Split by child: subjects 01–08 train, 09–10 val, 11–14 test (the 8 test images most papers use). Ground truth: the
first observer; the second is kept as `mask2`, the human baseline. The release has no FOV masks: `chase_fov` derives
one by a fixed rule. Scored as vessels: pooled pixel metrics inside the FOV (and over every pixel, `whole_*`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from benchmarks.data._spec import Split
from benchmarks.data.seg._base import Item, SegDataset, SegSample, binary, first, register, rgb, sample

SPLIT: dict[Split, range] = {Split.TRAIN: range(1, 9), Split.VAL: range(9, 11), Split.TEST: range(11, 15)}
"""Subjects (children) per split."""
FOV_RED_THRESHOLD = 10
"""FOV: red-channel level above which a pixel is fundus (the black surround is 0–8 after JPEG)."""
VESSEL_COLUMNS = (("auc", "AUC"), ("acc", "Acc"), ("sensitivity", "Se"), ("specificity", "Sp"), ("f1", "F1 (Dice)"),
                  ("iou", "IoU"), ("whole_auc", "AUC (whole image)"), ("whole_f1", "F1 (whole image)"))
"""What a vessel dataset's board shows (DRIVE shows the same)."""


def chase_fov(image: np.ndarray) -> np.ndarray:
    """The field of view of a CHASE_DB1 fundus image (the release has none), by a fixed rule.

    Red channel > `FOV_RED_THRESHOLD` (the camera's black surround is 0–8 after JPEG; the fundus, even where dark,
    is far above it in red), then a binary opening (3x3 cross, 2 iterations) that removes JPEG specks, a closing
    (4 iterations) that bridges notches at the rim, hole filling (dark vessels and lesions inside the disc) and the
    largest connected component. On the 28 images this covers 65–70% of the pixels, leaves the corners out and
    holds all but < 0.5% of the first observer's vessel pixels (the observers sometimes drew a vessel a few pixels
    past the rim).
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"chase_fov needs an RGB image (H, W, 3), got shape {image.shape}")
    m = image[..., 0] > FOV_RED_THRESHOLD
    m = ndi.binary_opening(m, iterations=2)
    m = ndi.binary_closing(m, iterations=4, border_value=0)
    m = ndi.binary_fill_holes(m)
    labels, n = ndi.label(m)
    if n > 1:
        m = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    return m


def _items(d: Path) -> dict[Split, list[Item]]:
    return {split: [Item(f"Image_{s:02d}{eye}", f"{s:02d}",
                         first(d, f"images/Image_{s:02d}{eye}.jpg", f"Image_{s:02d}{eye}.jpg"),
                         first(d, f"masks_1stHO/Image_{s:02d}{eye}_1stHO.png", f"Image_{s:02d}{eye}_1stHO.png"),
                         mask2=first(d, f"masks_2ndHO/Image_{s:02d}{eye}_2ndHO.png", f"Image_{s:02d}{eye}_2ndHO.png"))
                    for s in subjects for eye in "LR"]
            for split, subjects in SPLIT.items()}


def _read(it: Item) -> SegSample:
    image = rgb(it.image)
    return sample(it, image, binary(it.mask), chase_fov(image), None if it.mask2 is None else binary(it.mask2))


CHASE_DB1 = register(SegDataset(
    name="chase_db1", title="CHASE_DB1",
    description="CHASE_DB1 retinal vessels: 28 fundus images (999x960) of 14 children, split by child, first "
                "observer as ground truth, derived FOV",
    folders=("chase_db1", "CHASEDB1", "CHASE_DB1"), native_size=960, n_channels=3,
    labels={"0": "background", "1": "vessel"}, n_samples={"train": 16, "val": 4, "test": 8}, license="CC BY 4.0",
    citation="Fraz et al., An ensemble classification-based approach applied to retinal blood vessel segmentation, "
             "IEEE Trans. Biomed. Eng. 59(9):2538-2548 (2012), doi:10.1109/TBME.2012.2205687; CHASE_DB1, Kingston "
             "University, https://researchdata.kingston.ac.uk/96/",
    marker=lambda d: (d / "images" / "Image_01L.jpg").is_file() or (d / "Image_01L.jpg").is_file(),
    expected="images/Image_01L.jpg … Image_14R.jpg, masks_1stHO/Image_<ID>_1stHO.png and "
             "masks_2ndHO/Image_<ID>_2ndHO.png (or the 84 files side by side, as unzipped from the official "
             "CHASEDB1.zip)",
    download="download CHASEDB1.zip (CC BY 4.0) from the Kingston University dataset page "
             "https://researchdata.kingston.ac.uk/96/ and unzip it there",
    items=_items, read=_read, scorer="pooled", columns=VESSEL_COLUMNS, headline="f1",
    scope="pooled over the 8 test images' pixels inside the derived FOV (whole image: every pixel)"))
