"""ISBI-2012 EM neuronal membranes (Cardona et al. 2010; Arganda-Carreras et al. 2015): 30 labelled 512x512 slices
of one serial-section stack. Non-commercial use only.

Split in contiguous blocks, because adjacent slices are correlated: 0–19 train, 20–24 val, 25–29 test. The
challenge's 30 test slices have no public labels, so "test" here is this held-out block, not the hidden challenge
test set. Positive class = membrane (mask value 0); FOV = the whole image. Scored as membranes: Dice/IoU, pixel
error and adapted Rand error (which needs the masks' layout, so its outputs keep bit masks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.data._spec import Split
from benchmarks.data.seg._base import Item, SegDataset, SegSample, gray, register, sample

SPLIT: dict[Split, range] = {Split.TRAIN: range(20), Split.VAL: range(20, 25), Split.TEST: range(25, 30)}
"""Training slices per split (contiguous blocks)."""


def _items(d: Path) -> dict[Split, list[Item]]:
    if not (d / "train" / "images").is_dir():  # the challenge's multi-page TIFFs, one page per slice
        return {split: [Item(f"slice_{i:02d}", f"{i:02d}", d / "train-volume.tif", d / "train-labels.tif", page=i)
                        for i in slices] for split, slices in SPLIT.items()}
    return {split: [Item(f"slice_{i:02d}", f"{i:02d}", d / "train" / "images" / f"{i}.png",
                         d / "train" / "masks" / f"{i}.png") for i in slices] for split, slices in SPLIT.items()}


def _read(it: Item) -> SegSample:
    membrane = gray(it.mask, it.page) < 128  # 255 = cell interior, 0 = membrane: membrane is the positive class
    return sample(it, gray(it.image, it.page), membrane, np.ones_like(membrane), None)


ISBI2012 = register(SegDataset(
    name="isbi2012", title="ISBI-2012 EM membranes",
    description="ISBI-2012 EM neuronal membranes: 30 labelled 512x512 slices in contiguous blocks; test is a "
                "held-out block, not the hidden challenge test set",
    folders=("isbi2012_em_membrane", "isbi2012"), native_size=512, n_channels=1,
    labels={"0": "cell interior", "1": "membrane"}, n_samples={"train": 20, "val": 5, "test": 5},
    license="non-commercial use only (ISBI 2012 challenge terms; cite Cardona et al. 2010 and TrakEM2)",
    citation="Cardona et al., PLoS Biol 8(10):e1000502 (2010), doi:10.1371/journal.pbio.1000502; TrakEM2; "
             "Arganda-Carreras et al., Front. Neuroanat. 9:142 (2015), doi:10.3389/fnana.2015.00142",
    marker=lambda d: (d / "train" / "images").is_dir() or (d / "train-volume.tif").is_file(),
    expected="train/images/0.png … 29.png and train/masks/0.png … 29.png (255 = cell interior, 0 = membrane), or "
             "the challenge's train-volume.tif and train-labels.tif",
    download="download train-volume.tif and train-labels.tif from the ISBI 2012 challenge site "
             "http://brainiac2.mit.edu/isbi_challenge/ (registration; non-commercial use only) and put them there",
    items=_items, read=_read, scorer="membranes",
    columns=(("dice", "membrane Dice"), ("iou", "membrane IoU"), ("pixel_error", "pixel error"),
             ("rand_error", "adapted Rand error"), ("auc", "AUC")),
    headline="dice",
    scope="over the 5 held-out slices 25–29 (membrane = positive class; Rand error per slice, averaged)"))
