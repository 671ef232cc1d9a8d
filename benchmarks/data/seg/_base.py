"""What every segmentation dataset shares: `SegSample`, the `SegDataset` facts a dataset file fills in, where the
files are looked for, MD5SUMS checks, and `load_samples`. Each dataset is one file next to this one
(`chase_db1.py`, `isbi2012.py`, `drive.py`) that calls `register`; adding one is one new file (docs/datasets.md).

Where the files are looked for (the first folder that has the dataset's files wins):

1. `root` (the CLI's `--data-dir`): the dataset's folder itself, or a folder holding it under one of its folder
   names (`SegDataset.folders`). With `root` nothing else is searched.
2. `$MEDZOO_SEG_DATA_DIR/<folder name>`.
3. `$MEDZOO_DATA_DIR/<folder name>`, then `$MEDZOO_DATA_DIR/../<folder name>`: MedMNIST's data folder is usually a
   sibling of the segmentation folders (e.g. `data/medmnist`, `data/chase_db1`).

There is no built-in default folder: these sets are not downloaded automatically (DRIVE and ISBI need a
registration), so a miss is a `DatasetNotFoundError` naming the folders tried, the files expected and where to get
them. When a dataset folder ships an `MD5SUMS` file (`md5sum` format), every file used is checked against it.
Every image comes as a `SegSample` at native resolution: the image, the positive-class mask, the field of view that
metrics are computed inside, and (where the data has one) a second observer's mask, the human baseline.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.data._spec import (
    DATASETS,
    Arrays,
    ChecksumError,
    DatasetNotFoundError,
    DatasetSpec,
    Split,
    Task,
    file_md5,
)
from zoo import MedzooError, Registry

ENV_VAR = "MEDZOO_SEG_DATA_DIR"


class SegmentationDataError(MedzooError, ValueError):
    """Segmentation files that exist but cannot be used as they are (wrong shapes, partial label folders)."""


@dataclass(frozen=True, eq=False)
class SegSample:
    """One image with its masks. Arrays are read-only (samples are cached and shared); copy before editing.

    `mask` is the positive class metrics score (vessel; ISBI: membrane), `fov` the pixels metrics are computed
    inside, `mask2` a second human observer, else None. `subject` is what the split is made by (a child, a slice,
    an image number).
    """

    id: str
    subject: str
    image: np.ndarray  # uint8 (H, W) or (H, W, 3)
    mask: np.ndarray  # bool (H, W)
    fov: np.ndarray  # bool (H, W)
    mask2: np.ndarray | None = None  # bool (H, W)


@dataclass(frozen=True)
class Item:
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
class SegDataset:
    """Every fact of one segmentation dataset, in its own file: where its files are and how they are read and
    split, its source and license, how it is scored and what its board shows."""

    name: str
    title: str
    description: str
    folders: tuple[str, ...]  # folder names it is looked for under (see the module docstring)
    native_size: int  # image height in pixels; images are always loaded at native resolution
    n_channels: int
    labels: Mapping[str, str]  # "0": background class, "1": the positive class metrics score
    n_samples: Mapping[str, int]
    license: str
    citation: str
    marker: Callable[[Path], bool]  # does this folder hold the dataset?
    expected: str  # the files a folder must have, for error messages
    download: str  # where and how to get them
    items: Callable[[Path], dict[Split, list[Item]]]  # the split: which files are in train / val / test
    read: Callable[[Item], SegSample]
    scorer: str  # a key of `benchmarks.cells.segmentation.SCORERS`
    columns: tuple[tuple[str, str], ...]  # board columns: (metric key, header)
    headline: str  # the metric board rows are ordered by
    scope: str  # what the board says its metrics are computed over
    on_found: Callable[[Path], None] = field(default=lambda d: None, compare=False)  # e.g. warn about the protocol
    redistributable: bool = True  # False: no copy can ship with a benchmark; each user brings their own


SEG_DATASETS: Registry[SegDataset] = Registry("segmentation dataset")


# --- where the files are ------------------------------------------------------------------------------------------

def _candidates(ds: SegDataset, root: Path | str | None) -> list[Path]:
    if root is not None:
        r = Path(root).expanduser()
        return [r, *(r / f for f in ds.folders)]
    out: list[Path] = []
    if os.environ.get(ENV_VAR):
        out += [Path(os.environ[ENV_VAR]).expanduser() / f for f in ds.folders]
    if os.environ.get("MEDZOO_DATA_DIR"):
        d = Path(os.environ["MEDZOO_DATA_DIR"]).expanduser()
        out += [d / f for f in ds.folders] + [d.parent / f for f in ds.folders]
    return out


def dataset_dir(name: str, root: Path | str | None = None) -> Path:
    """The folder holding dataset `name` (search order in the module docstring), else a `DatasetNotFoundError`
    that names the folders tried, the files expected and where to download them."""
    ds = seg_dataset(name)
    tried = _candidates(ds, root)
    for d in tried:
        if d.is_dir() and ds.marker(d):
            return d
    where = ", ".join(str(d) for d in tried) if tried else (
        f"nowhere: no root/--data-dir given and neither ${ENV_VAR} nor $MEDZOO_DATA_DIR is set")
    target = tried[0] if tried else Path("<data folder>") / ds.folders[0]
    raise DatasetNotFoundError(
        f"{ds.title} not found (looked in {where}). Expected {ds.expected}. To get it, {ds.download}: {target} — "
        f"then pass that folder as root/--data-dir, or set {ENV_VAR} to the folder holding {ds.folders[0]}/.")


def first(directory: Path, *relative: str) -> Path:
    """The first of several accepted places of one file (missing: the first, for the error message)."""
    for rel in relative:
        if (directory / rel).is_file():
            return directory / rel
    return directory / relative[0]


def _items(ds: SegDataset, root: Path | str | None) -> tuple[Path, dict[Split, list[Item]]]:
    d = dataset_dir(ds.name, root)
    items = ds.items(d)
    files = sorted({p for split in items.values() for it in split for p in it.files()})
    missing = [p for p in files if not p.is_file()]
    if missing:
        shown = ", ".join(str(p.relative_to(d)) for p in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DatasetNotFoundError(f"{ds.title} in {d} is incomplete: missing {shown}{more}. Expected "
                                   f"{ds.expected}. To get it, {ds.download}.")
    ds.on_found(d)
    return d, items


# --- integrity ----------------------------------------------------------------------------------------------------

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
        if expected is not None and (actual := file_md5(f)) != expected:
            raise ChecksumError(f"md5 mismatch for {f}: expected {expected} (from {directory / 'MD5SUMS'}), got "
                                f"{actual}. The file is corrupt or was changed: restore the original file.")


def _fingerprint_of(ds: SegDataset, root: Path | str | None) -> str:
    """md5 over (sample id, role, file md5) of every file the three splits use: the same files give the same
    fingerprint in any accepted layout."""
    d, items = _items(ds, root)
    _verify(d, sorted({p for split in items.values() for it in split for p in it.files()}))
    manifest = "".join(f"{it.id} {role} {file_md5(path)}\n" for split in Split for it in items[split]
                       for role, path in (("image", it.image), ("mask", it.mask), ("fov", it.fov), ("mask2", it.mask2))
                       if path is not None)
    return hashlib.md5(manifest.encode()).hexdigest()


# --- reading ------------------------------------------------------------------------------------------------------

def _open(path: Path, page: int | None) -> Image.Image:
    img = Image.open(path)
    if page is not None:
        try:
            img.seek(page)
        except EOFError:
            raise SegmentationDataError(f"{path} has fewer than {page + 1} pages (slices); expected 30.") from None
    return img


def gray(path: Path, page: int | None = None) -> np.ndarray:
    with _open(path, page) as img:
        return np.array(img.convert("L"))


def rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.array(img.convert("RGB"))


def binary(path: Path, page: int | None = None) -> np.ndarray:
    """A 0/255 (or 1-bit) mask as bool; > 127 is on."""
    return gray(path, page) > 127


def sample(it: Item, image: np.ndarray, mask: np.ndarray, fov: np.ndarray, mask2: np.ndarray | None) -> SegSample:
    """A read-only `SegSample`, its masks checked against the image's size."""
    for what, a in (("mask", mask), ("FOV mask", fov), ("second observer's mask", mask2)):
        if a is not None and a.shape != image.shape[:2]:
            raise SegmentationDataError(f"{it.id}: the {what} is {a.shape[1]}x{a.shape[0]} but the image "
                                        f"{it.image} is {image.shape[1]}x{image.shape[0]} (W x H).")
    for a in (image, mask, fov, mask2):
        if a is not None:
            a.setflags(write=False)
    return SegSample(it.id, it.subject, image, mask, fov, mask2)


@lru_cache(maxsize=6)
def _cached(name: str, directory: Path, items: tuple[Item, ...],
            stamp: tuple[tuple[int, int], ...]) -> tuple[SegSample, ...]:  # stamp: re-read when a file changes
    read = seg_dataset(name).read
    return tuple(read(it) for it in items)


def seg_dataset(name: str) -> SegDataset:
    """The facts of segmentation dataset `name`; a classification dataset's name gets a clear error."""
    if name not in SEG_DATASETS and (name in DATASETS or DATASETS.absent_why(name)):  # e.g. MedMNIST, installed or not
        raise SegmentationDataError(f"{name!r} is not a segmentation dataset; these are: "
                                    f"{', '.join(SEG_DATASETS.names())}")
    if name not in SEG_DATASETS:
        DATASETS.get(name)  # an unknown name: UnknownNameError with "did you mean" over every dataset
    return SEG_DATASETS.get(name)


def load_samples(name: str, split: Split | str, root: Path | str | None = None) -> list[SegSample]:
    """The samples of segmentation dataset `name` in `split`, with FOV masks and (where the data has one) the second
    observer; files are md5-checked against the folder's MD5SUMS when it has one."""
    ds = seg_dataset(name)
    split = Split(split)
    d, items = _items(ds, root)
    chosen = tuple(items[split])
    files = sorted({p for it in chosen for p in it.files()})
    _verify(d, files)
    stamp = tuple((p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    return list(_cached(name, d.resolve(), chosen, stamp))


def _check_size(ds: SegDataset, size: int | None) -> None:
    if size is not None and size != ds.native_size:
        raise ValueError(f"{ds.name} is loaded at its native resolution ({ds.native_size} px high); got size={size}. "
                         f"Crop patches or resize in the training code instead.")


def register(ds: SegDataset) -> SegDataset:
    """Add `ds` to `SEG_DATASETS` and, as a `DatasetSpec` (arrays at native resolution), to `DATASETS`."""
    def load(split: Split | str, size: int | None = None, root: Path | None = None) -> Arrays:
        """(images uint8 (N, H, W[, 3]), masks uint8 (N, H, W), 1 = positive class) at native resolution."""
        _check_size(ds, size)
        samples = load_samples(ds.name, split, root)
        return np.stack([s.image for s in samples]), np.stack([s.mask for s in samples]).astype(np.uint8)

    def fingerprint(size: int | None = None, root: Path | None = None) -> str:
        _check_size(ds, size)
        return _fingerprint_of(ds, root)

    SEG_DATASETS.add(ds)
    DATASETS.add(DatasetSpec(name=ds.name, task=Task.SEGMENTATION, n_channels=ds.n_channels, labels=ds.labels,
                             n_samples=ds.n_samples, sizes=(ds.native_size,), license=ds.license,
                             citation=ds.citation, load=load, fingerprint=fingerprint,  # type: ignore[arg-type]
                             description=ds.description, redistributable=ds.redistributable))
    return ds
