"""Segmentation datasets: CHASE_DB1 and DRIVE retinal vessels, ISBI-2012 EM neuronal membranes.

Every image comes as a `SegSample`: the image, the positive-class mask (vessel; for ISBI the *membrane*), the field
of view that metrics are computed inside, and (CHASE_DB1, DRIVE test) a second observer's mask, which is the human
baseline. `load_samples(name, split, root)` gives the samples; the registered `DatasetSpec.load(split, size, root)`
gives stacked arrays `(images uint8 (N, H, W[, 3]), masks uint8 (N, H, W) 0/1)` at native resolution.

Where the files are looked for (the first folder that has the dataset's files wins):

1. `root` (the CLI's `--data-dir`): the dataset's folder itself, or a folder holding it under one of its folder
   names (`chase_db1`, `isbi2012_em_membrane`, `drive`; see `FOLDERS`). With `root` nothing else is searched.
2. `$MEDZOO_SEG_DATA_DIR/<folder name>`.
3. `$MEDZOO_DATA_DIR/<folder name>`, then `$MEDZOO_DATA_DIR/../<folder name>`: MedMNIST's data folder is usually a
   sibling of the segmentation folders (e.g. `data/medmnist`, `data/chase_db1`).

There is no built-in default folder: these sets are not downloaded automatically (DRIVE and ISBI need a
registration), so a miss is a `DatasetNotFoundError` naming the folders tried, the files expected and where to get
them. When a dataset folder ships an `MD5SUMS` file (`md5sum` format), every file used is checked against it.

Splits (fixed, documented, no randomness):

- CHASE_DB1 (28 images, both eyes of 14 children): split by child, subjects 01–08 train, 09–10 val, 11–14 test
  (the 8 test images most papers use). Ground truth: first observer; second observer kept as `mask2`. The release
  has no FOV masks; `chase_fov` derives one (rule in its docstring).
- ISBI-2012 (30 labelled slices of one serial-section stack): contiguous blocks, 0–19 train, 20–24 val, 25–29
  test, because adjacent slices are correlated. The challenge's 30 test slices have no public labels, so "test"
  here is this held-out block, not the hidden challenge test set. Positive class = membrane (mask value 0);
  FOV = whole image.
- DRIVE (40 images): with the official test labels, test = the 20 official test images (01–20), val = training
  images 35–36, train = the other 18 training images; official FOV masks. Downloads without `test/1st_manual` get
  a `DriveTestLabelsMissingWarning` and a held-out split of `training/`: 21–34 train, 35–36 val, 37–40 test
  (`drive_has_test_labels` says which protocol applies).
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from benchmarks.datasets._spec import DATASETS, Arrays, DatasetNotFoundError, DatasetSpec, Split, Task
from benchmarks.datasets.medmnist import ChecksumError
from zoo import MedzooError

ENV_VAR = "MEDZOO_SEG_DATA_DIR"
FOLDERS: dict[str, tuple[str, ...]] = {
    "chase_db1": ("chase_db1", "CHASEDB1", "CHASE_DB1"),
    "isbi2012": ("isbi2012_em_membrane", "isbi2012"),
    "drive": ("drive", "DRIVE"),
}
NATIVE_SIZE = {"chase_db1": 960, "isbi2012": 512, "drive": 584}
"""Image height in pixels; images are always loaded at native resolution (CHASE 999x960, DRIVE 565x584 W x H)."""

CHASE_SPLIT: dict[Split, range] = {Split.TRAIN: range(1, 9), Split.VAL: range(9, 11), Split.TEST: range(11, 15)}
"""CHASE_DB1 subjects (children) per split."""
ISBI_SPLIT: dict[Split, range] = {Split.TRAIN: range(0, 20), Split.VAL: range(20, 25), Split.TEST: range(25, 30)}
"""ISBI-2012 training slices per split (contiguous blocks)."""
DRIVE_SPLIT: dict[Split, tuple[int, ...]] = {Split.TRAIN: (*range(21, 35), *range(37, 41)), Split.VAL: (35, 36),
                                             Split.TEST: tuple(range(1, 21))}
"""DRIVE image numbers per split with the official test labels (01–20 are the official test images)."""
DRIVE_HELD_OUT_SPLIT: dict[Split, tuple[int, ...]] = {Split.TRAIN: tuple(range(21, 35)), Split.VAL: (35, 36),
                                                      Split.TEST: (37, 38, 39, 40)}
"""DRIVE image numbers per split when `test/1st_manual` is missing: everything comes from `training/`."""

FOV_RED_THRESHOLD = 10
"""CHASE_DB1 FOV: red-channel level above which a pixel is fundus (the black surround is 0–8 after JPEG)."""


class SegmentationDataError(MedzooError, ValueError):
    """Segmentation files that exist but cannot be used as they are (wrong shapes, partial label folders)."""


class DriveTestLabelsMissingWarning(UserWarning):
    """DRIVE's `test/1st_manual` is missing: test metrics come from held-out training images 37–40."""


@dataclass(frozen=True, eq=False)
class SegSample:
    """One image with its masks. Arrays are read-only (samples are cached and shared); copy before editing.

    `mask` is the positive class metrics score (vessel; ISBI: membrane), `fov` the pixels metrics are computed
    inside, `mask2` a second human observer (CHASE_DB1; DRIVE's official test set), else None. `subject` is what
    the split is made by: the child (CHASE), the slice (ISBI) or the image number (DRIVE).
    """

    id: str
    subject: str
    image: np.ndarray  # uint8 (H, W) or (H, W, 3)
    mask: np.ndarray  # bool (H, W)
    fov: np.ndarray  # bool (H, W)
    mask2: np.ndarray | None = None  # bool (H, W)


@dataclass(frozen=True)
class _Item:
    """Where one sample's files are (`page`: the slice of a multi-page TIFF, ISBI's challenge volumes)."""

    id: str
    subject: str
    image: Path
    mask: Path
    fov: Path | None = None
    mask2: Path | None = None
    page: int | None = None

    def files(self) -> list[Path]:
        return [p for p in (self.image, self.mask, self.fov, self.mask2) if p is not None]


@dataclass(frozen=True)
class _Source:
    title: str
    marker: Callable[[Path], bool]  # does this folder hold the dataset?
    expected: str
    download: str


_SOURCES: dict[str, _Source] = {
    "chase_db1": _Source(
        "CHASE_DB1", lambda d: (d / "images" / "Image_01L.jpg").is_file() or (d / "Image_01L.jpg").is_file(),
        "images/Image_01L.jpg … Image_14R.jpg, masks_1stHO/Image_<ID>_1stHO.png and masks_2ndHO/Image_<ID>_2ndHO.png "
        "(or the 84 files side by side, as unzipped from the official CHASEDB1.zip)",
        "download CHASEDB1.zip (CC BY 4.0) from the Kingston University dataset page "
        "https://researchdata.kingston.ac.uk/96/ and unzip it there"),
    "isbi2012": _Source(
        "ISBI-2012 EM membranes",
        lambda d: (d / "train" / "images").is_dir() or (d / "train-volume.tif").is_file(),
        "train/images/0.png … 29.png and train/masks/0.png … 29.png (255 = cell interior, 0 = membrane), or the "
        "challenge's train-volume.tif and train-labels.tif",
        "download train-volume.tif and train-labels.tif from the ISBI 2012 challenge site "
        "http://brainiac2.mit.edu/isbi_challenge/ (registration; non-commercial use only) and put them there"),
    "drive": _Source(
        "DRIVE", lambda d: (d / "training" / "images").is_dir(),
        "training/images/21_training.tif … 40_training.tif, training/1st_manual/<N>_manual1.gif, "
        "training/mask/<N>_training_mask.gif, and test/images/01_test.tif … 20_test.tif, "
        "test/mask/<N>_test_mask.gif, test/1st_manual/<N>_manual1.gif (test labels optional)",
        "DRIVE may not be redistributed: register and download it from its official site "
        "https://drive.grand-challenge.org/ and unzip training/ and test/ there"),
}


# --- where the files are ----------------------------------------------------------------------------------------------

def _candidates(name: str, root: Path | str | None) -> list[Path]:
    folders = FOLDERS[name]
    if root is not None:
        r = Path(root).expanduser()
        return [r, *(r / f for f in folders)]
    out: list[Path] = []
    if os.environ.get(ENV_VAR):
        out += [Path(os.environ[ENV_VAR]).expanduser() / f for f in folders]
    if os.environ.get("MEDZOO_DATA_DIR"):
        d = Path(os.environ["MEDZOO_DATA_DIR"]).expanduser()
        out += [d / f for f in folders] + [d.parent / f for f in folders]
    return out


def dataset_dir(name: str, root: Path | str | None = None) -> Path:
    """The folder holding dataset `name` (search order in the module docstring), else a `DatasetNotFoundError`
    that names the folders tried, the files expected and where to download them."""
    src = _SOURCES[name]
    tried = _candidates(name, root)
    for d in tried:
        if d.is_dir() and src.marker(d):
            return d
    where = ", ".join(str(d) for d in tried) if tried else (
        f"nowhere: no root/--data-dir given and neither ${ENV_VAR} nor $MEDZOO_DATA_DIR is set")
    target = tried[0] if tried else Path("<data folder>") / FOLDERS[name][0]
    raise DatasetNotFoundError(
        f"{src.title} not found (looked in {where}). Expected {src.expected}. To get it, {src.download}: {target} — "
        f"then pass that folder as root/--data-dir, or set {ENV_VAR} to the folder holding {FOLDERS[name][0]}/.")


def _require(name: str, directory: Path, paths: list[Path]) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        shown = ", ".join(str(p.relative_to(directory)) for p in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        src = _SOURCES[name]
        raise DatasetNotFoundError(
            f"{src.title} in {directory} is incomplete: missing {shown}{more}. Expected {src.expected}. To get it, "
            f"{src.download}.")


def _first(directory: Path, *relative: str) -> Path:
    """The first of several accepted places of one file (missing: the first, for the error message)."""
    for rel in relative:
        if (directory / rel).is_file():
            return directory / rel
    return directory / relative[0]


def _chase_items(d: Path) -> dict[Split, list[_Item]]:
    out: dict[Split, list[_Item]] = {}
    for split, subjects in CHASE_SPLIT.items():
        out[split] = [
            _Item(f"Image_{s:02d}{eye}", f"{s:02d}",
                  _first(d, f"images/Image_{s:02d}{eye}.jpg", f"Image_{s:02d}{eye}.jpg"),
                  _first(d, f"masks_1stHO/Image_{s:02d}{eye}_1stHO.png", f"Image_{s:02d}{eye}_1stHO.png"),
                  mask2=_first(d, f"masks_2ndHO/Image_{s:02d}{eye}_2ndHO.png", f"Image_{s:02d}{eye}_2ndHO.png"))
            for s in subjects for eye in "LR"]
    return out


def _isbi_items(d: Path) -> dict[Split, list[_Item]]:
    volume = not (d / "train" / "images").is_dir()
    out: dict[Split, list[_Item]] = {}
    for split, slices in ISBI_SPLIT.items():
        if volume:  # the challenge's multi-page TIFFs, one page per slice
            out[split] = [_Item(f"slice_{i:02d}", f"{i:02d}", d / "train-volume.tif", d / "train-labels.tif", page=i)
                          for i in slices]
        else:
            out[split] = [_Item(f"slice_{i:02d}", f"{i:02d}", d / "train" / "images" / f"{i}.png",
                                d / "train" / "masks" / f"{i}.png") for i in slices]
    return out


def drive_has_test_labels(root: Path | str | None = None) -> bool:
    """Whether DRIVE's official test labels (`test/1st_manual/*_manual1.gif`) are there; without them the test
    split is the held-out training images 37–40 (`DRIVE_HELD_OUT_SPLIT`)."""
    return _drive_official(dataset_dir("drive", root))


def _drive_official(d: Path) -> bool:
    return any((d / "test" / "1st_manual").glob("*_manual1.gif"))


def _drive_item(d: Path, n: int) -> _Item:
    part, kind = ("training", "training") if n > 20 else ("test", "test")
    manual2 = d / part / "2nd_manual" / f"{n:02d}_manual2.gif"
    return _Item(f"{n:02d}_{kind}", f"{n:02d}", d / part / "images" / f"{n:02d}_{kind}.tif",
                 d / part / "1st_manual" / f"{n:02d}_manual1.gif", fov=d / part / "mask" / f"{n:02d}_{kind}_mask.gif",
                 mask2=manual2 if manual2.is_file() else None)


def _drive_items(d: Path) -> dict[Split, list[_Item]]:
    split = DRIVE_SPLIT if _drive_official(d) else DRIVE_HELD_OUT_SPLIT
    return {s: [_drive_item(d, n) for n in numbers] for s, numbers in split.items()}


_ITEMS: dict[str, Callable[[Path], dict[Split, list[_Item]]]] = {
    "chase_db1": _chase_items, "isbi2012": _isbi_items, "drive": _drive_items}


def _items(name: str, root: Path | str | None) -> tuple[Path, dict[Split, list[_Item]]]:
    d = dataset_dir(name, root)
    items = _ITEMS[name](d)
    _require(name, d, sorted({p for split in items.values() for it in split for p in it.files()}))
    if name == "drive" and not _drive_official(d):
        warnings.warn(DriveTestLabelsMissingWarning(
            f"DRIVE in {d} has no test/1st_manual/*_manual1.gif (the official test labels), so the test split is "
            f"training images 37–40 (val 35–36, train 21–34), not the official test set: results are not "
            f"comparable with papers' DRIVE test numbers."), stacklevel=3)
    return d, items


# --- integrity --------------------------------------------------------------------------------------------------------

@lru_cache(maxsize=1024)
def _md5(path: Path, mtime_ns: int, nbytes: int) -> str:  # keyed on stat: re-hashed when the file changes
    return hashlib.md5(path.read_bytes()).hexdigest()


def _file_md5(path: Path) -> str:
    stat = path.stat()
    return _md5(path, stat.st_mtime_ns, stat.st_size)


def _md5sums(directory: Path) -> dict[str, str]:
    """`MD5SUMS` of a dataset folder as relative path → md5 (empty when there is none)."""
    path = directory / "MD5SUMS"
    if not path.is_file():
        return {}
    sums: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"([0-9a-fA-F]{32}) [ *](?:\./)?(.+)", line.strip())
        if m:
            sums[m.group(2)] = m.group(1).lower()
    return sums


def _verify(directory: Path, files: list[Path]) -> None:
    sums = _md5sums(directory)
    for f in files:
        expected = sums.get(f.relative_to(directory).as_posix())
        if expected is not None and (actual := _file_md5(f)) != expected:
            raise ChecksumError(f"md5 mismatch for {f}: expected {expected} (from {directory / 'MD5SUMS'}), got "
                                f"{actual}. The file is corrupt or was changed: restore the original file.")


def _fingerprint_of(name: str, root: Path | str | None) -> str:
    """md5 over (sample id, role, file md5) of every file the three splits use: the same files give the same
    fingerprint in either layout (CHASE's subfolders or the flat official zip)."""
    d, items = _items(name, root)
    _verify(d, sorted({p for split in items.values() for it in split for p in it.files()}))
    manifest = "".join(f"{it.id} {role} {_file_md5(path)}\n" for split in Split for it in items[split]
                       for role, path in (("image", it.image), ("mask", it.mask), ("fov", it.fov), ("mask2", it.mask2))
                       if path is not None)
    return hashlib.md5(manifest.encode()).hexdigest()


# --- reading ----------------------------------------------------------------------------------------------------------

def _open(path: Path, page: int | None) -> Image.Image:
    img = Image.open(path)
    if page is not None:
        try:
            img.seek(page)
        except EOFError:
            raise SegmentationDataError(f"{path} has fewer than {page + 1} pages (slices); expected 30.") from None
    return img


def _gray(path: Path, page: int | None = None) -> np.ndarray:
    with _open(path, page) as img:
        return np.array(img.convert("L"))


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.array(img.convert("RGB"))


def _binary(path: Path, page: int | None = None) -> np.ndarray:
    """A 0/255 (or 1-bit) mask as bool; > 127 is on."""
    return _gray(path, page) > 127


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


def _frozen(a: np.ndarray | None) -> np.ndarray | None:
    if a is not None:
        a.setflags(write=False)
    return a


def _read(name: str, it: _Item) -> SegSample:
    if name == "isbi2012":
        image = _gray(it.image, it.page)
        membrane = _gray(it.mask, it.page) < 128  # 255 = cell interior, 0 = membrane: membrane is the positive class
        fov = np.ones_like(membrane)
        mask2 = None
    else:
        image = _rgb(it.image)
        membrane = _binary(it.mask)
        fov = chase_fov(image) if it.fov is None else _binary(it.fov)
        mask2 = None if it.mask2 is None else _binary(it.mask2)
    for what, a in (("mask", membrane), ("FOV mask", fov), ("second observer's mask", mask2)):
        if a is not None and a.shape != image.shape[:2]:
            raise SegmentationDataError(f"{it.id}: the {what} is {a.shape[1]}x{a.shape[0]} but the image "
                                        f"{it.image} is {image.shape[1]}x{image.shape[0]} (W x H).")
    return SegSample(it.id, it.subject, _frozen(image), _frozen(membrane), _frozen(fov), _frozen(mask2))


@lru_cache(maxsize=6)
def _cached(name: str, directory: Path, items: tuple[_Item, ...],
            stamp: tuple[tuple[int, int], ...]) -> tuple[SegSample, ...]:  # stamp: re-read when a file changes
    return tuple(_read(name, it) for it in items)


def _check_name(name: str) -> None:
    if name not in _SOURCES:
        DATASETS.get(name)  # an unknown name: UnknownNameError with "did you mean"
        raise SegmentationDataError(f"{name!r} is not a segmentation dataset; these are: {', '.join(sorted(_SOURCES))}")


def load_samples(name: str, split: Split | str, root: Path | str | None = None) -> list[SegSample]:
    """The samples of segmentation dataset `name` (chase_db1, isbi2012, drive) in `split`, with FOV masks and (where
    the data has one) the second observer; files are md5-checked against the folder's MD5SUMS when it has one."""
    _check_name(name)
    split = Split(split)
    d, items = _items(name, root)
    chosen = tuple(items[split])
    files = sorted({p for it in chosen for p in it.files()})
    _verify(d, files)
    stamp = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    return list(_cached(name, d.resolve(), chosen, stamp))


def _check_size(name: str, size: int | None) -> None:
    if size is not None and size != NATIVE_SIZE[name]:
        raise ValueError(f"{name} is loaded at its native resolution ({NATIVE_SIZE[name]} px high); got size={size}. "
                         f"Crop patches or resize in the training code instead.")


def _loader(name: str) -> Callable[[Split, int, Path | None], Arrays]:
    def load(split: Split | str, size: int | None = None, root: Path | None = None) -> Arrays:
        """(images uint8 (N, H, W[, 3]), masks uint8 (N, H, W), 1 = positive class) at native resolution."""
        _check_size(name, size)
        samples = load_samples(name, split, root)
        return np.stack([s.image for s in samples]), np.stack([s.mask for s in samples]).astype(np.uint8)

    return load


def _fingerprint(name: str) -> Callable[[int, Path | None], str]:
    def fingerprint(size: int | None = None, root: Path | None = None) -> str:
        _check_size(name, size)
        return _fingerprint_of(name, root)

    return fingerprint


_VESSELS = {"0": "background", "1": "vessel"}
DATASETS.add(DatasetSpec(
    name="chase_db1", task=Task.SEGMENTATION, n_channels=3, labels=_VESSELS,
    n_samples={"train": 16, "val": 4, "test": 8}, sizes=(NATIVE_SIZE["chase_db1"],), license="CC BY 4.0",
    citation="Fraz et al., An ensemble classification-based approach applied to retinal blood vessel segmentation, "
             "IEEE Trans. Biomed. Eng. 59(9):2538-2548 (2012), doi:10.1109/TBME.2012.2205687; CHASE_DB1, Kingston "
             "University, https://researchdata.kingston.ac.uk/96/",
    load=_loader("chase_db1"), fingerprint=_fingerprint("chase_db1"),
    description="CHASE_DB1 retinal vessels: 28 fundus images (999x960) of 14 children, split by child, first "
                "observer as ground truth, derived FOV"))
DATASETS.add(DatasetSpec(
    name="isbi2012", task=Task.SEGMENTATION, n_channels=1, labels={"0": "cell interior", "1": "membrane"},
    n_samples={"train": 20, "val": 5, "test": 5}, sizes=(NATIVE_SIZE["isbi2012"],),
    license="non-commercial use only (ISBI 2012 challenge terms; cite Cardona et al. 2010 and TrakEM2)",
    citation="Cardona et al., PLoS Biol 8(10):e1000502 (2010), doi:10.1371/journal.pbio.1000502; TrakEM2; "
             "Arganda-Carreras et al., Front. Neuroanat. 9:142 (2015), doi:10.3389/fnana.2015.00142",
    load=_loader("isbi2012"), fingerprint=_fingerprint("isbi2012"),
    description="ISBI-2012 EM neuronal membranes: 30 labelled 512x512 slices in contiguous blocks; test is a "
                "held-out block, not the hidden challenge test set"))
DATASETS.add(DatasetSpec(
    name="drive", task=Task.SEGMENTATION, n_channels=3, labels=_VESSELS,
    n_samples={"train": 18, "val": 2, "test": 20}, sizes=(NATIVE_SIZE["drive"],),
    license="DRIVE terms: no copying or redistribution, no unauthorized commercial use (get it from its site)",
    citation="Staal et al., Ridge-based vessel segmentation in color images of the retina, IEEE Trans. Med. "
             "Imaging 23(4):501-509 (2004), doi:10.1109/TMI.2004.825627",
    load=_loader("drive"), fingerprint=_fingerprint("drive"),
    description="DRIVE retinal vessels: 40 fundus images (565x584), official FOV masks; without the official "
                "test labels: 14 / 2 / 4 held out from training/"))
