"""Your own images as a dataset: a CSV `path,label[,patient_id]` (header row required) and the files it names.

    path,label,patient_id
    images/p001_a.png,pneumonia,p001
    images/p001_b.png,pneumonia,p001
    /data/xray/p002.png,normal,p002

`path` is relative to the CSV's folder or absolute; `label` is an integer class index (0..K-1) or a class name
(names are sorted to give the indices); `patient_id` is optional (without it every row is its own patient).
Images are read with PIL, resized (bilinear) to one square size and held in memory as uint8: grayscale stays one
channel, RGB(A) becomes three (16-bit grayscale is mapped onto 0..255 by /257); a mix of the two is refused.

The train/val/test split is stratified and patient-level (`patient_split`): no patient is in two splits, class
proportions are kept approximately, and the same seed gives the same split.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from sklearn.model_selection import StratifiedGroupKFold

from benchmarks.data._spec import DATASETS, Arrays, DatasetNotFoundError, DatasetSpec, Split, Task
from zoo import MedzooError
from zoo.errors import DuplicateNameError

HEADER = "path,label[,patient_id]"
MAX_FOLDS = 20
"""The split is made of up to this many stratified group folds, so fractions are met to about 1/20."""


class FolderDatasetError(MedzooError, ValueError):
    """A folder dataset's CSV, images or split settings cannot be used as given."""


# --- the split -----------------------------------------------------------------------------------------------------

def _n_folds(val_fraction: float, test_fraction: float, n_groups: int) -> tuple[int, int, int]:
    """(folds, test folds, val folds) closest to the fractions; fewest folds among near-equals (bigger folds hold
    more of each class)."""
    best: tuple[float, int, int, int] | None = None
    for k in range(2, min(MAX_FOLDS, n_groups) + 1):
        m_test = max(round(test_fraction * k), 1) if test_fraction > 0 else 0
        m_val = max(round(val_fraction * k), 1) if val_fraction > 0 else 0
        if m_test + m_val >= k:
            continue
        err = abs(m_test / k - test_fraction) + abs(m_val / k - val_fraction)
        if err <= 0.02:
            return k, m_test, m_val
        if best is None or err < best[0]:
            best = (err, k, m_test, m_val)
    if best is None:
        raise FolderDatasetError(f"{n_groups} patient(s) cannot be split into train, val and test: add patients "
                                 f"or set val_fraction=0 / test_fraction=0.")
    return best[1:]


def _class_names(classes: Sequence[str] | None, c: int) -> str:
    return repr(str(classes[c])) if classes is not None else str(c)


def patient_split(labels: np.ndarray | Sequence[int], groups: np.ndarray | Sequence[object] | None = None,
                  val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0, *,
                  class_names: Sequence[str] | None = None) -> dict[Split, np.ndarray]:
    """Row indices of a stratified, patient-level train/val/test split.

    `labels`: one class index per row ((N,) or (N, 1)); `groups`: the patient of each row (None: each row is its
    own patient). scikit-learn's `StratifiedGroupKFold` (shuffled with `seed`) cuts up to `MAX_FOLDS` folds that
    keep class proportions; whole folds go to test and val in the fractions asked for (to about 1/20). No patient
    lands in two splits, and every class is in every non-empty split: a class too rare to be in every fold gets
    its smallest patient moved into the split that lacks it (a `FolderDatasetError` names a class with too few
    patients). Deterministic for a seed; indices are sorted.
    """
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise FolderDatasetError(f"patient_split needs one class per row, got labels of shape {y.shape}.")
    n = len(y)
    g = np.arange(n) if groups is None else np.asarray(groups, dtype=object).astype(str)
    if len(g) != n:
        raise FolderDatasetError(f"{n} labels but {len(g)} patient ids: give one patient id per row.")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise FolderDatasetError(f"val_fraction={val_fraction} and test_fraction={test_fraction} must each be in "
                                 f"[0, 1) and sum to less than 1 (e.g. 0.1 and 0.2).")
    want = [s for s, f in ((Split.VAL, val_fraction), (Split.TEST, test_fraction)) if f > 0]
    classes = np.unique(y)
    need = 1 + len(want)
    for c in classes:
        patients = len(np.unique(g[y == c]))
        if patients < need:
            raise FolderDatasetError(
                f"class {_class_names(class_names, c)} has {patients} patient(s) ({int((y == c).sum())} image(s)), "
                f"too few for a train/{'/'.join(s.value for s in want)} split, which needs at least {need} "
                f"patients per class: add images of other patients of this class, or drop or merge the class, or "
                f"set val_fraction=0 / test_fraction=0.")
    if not want:
        empty = np.zeros(0, dtype=np.int64)
        return {Split.TRAIN: np.arange(n), Split.VAL: empty, Split.TEST: empty}

    k, m_test, m_val = _n_folds(val_fraction, test_fraction, len(np.unique(g)))
    with warnings.catch_warnings():  # "least populated class has fewer members than n_splits": repaired below
        warnings.simplefilter("ignore", UserWarning)
        folds = [test for _, test in
                 StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(n), y, g)]
    names, gi = np.unique(g, return_inverse=True)  # patients, and each row's patient
    where = np.zeros(len(names), dtype=np.int64)  # each patient's split: 0 train, 1 val, 2 test
    for i in range(m_test):
        where[gi[folds[i]]] = 2
    for i in range(m_test, m_test + m_val):
        where[gi[folds[i]]] = 1
    _repair(where, gi, y, [0] + [1 if s is Split.VAL else 2 for s in want], seed, class_names)
    rows = where[gi]
    return {s: np.flatnonzero(rows == code) for code, s in enumerate(Split)}


def _repair(where: np.ndarray, gi: np.ndarray, y: np.ndarray, active: list[int], seed: int,
            class_names: Sequence[str] | None) -> None:
    """Give every split in `active` every class: a class that a fold left out of a split (a class with fewer
    patients than folds) gets its smallest patient from the split that holds the most of its patients."""
    rank = np.random.default_rng(seed).permutation(len(where))  # seeded tie-break between equal-sized patients
    size = np.bincount(gi, minlength=len(where))
    classes = np.unique(y)
    for _ in range(3 * len(classes) * len(active)):
        rows = where[gi]
        gaps = [(s, c) for c in classes for s in active if not np.any(y[rows == s] == c)]
        if not gaps:
            return
        s, c = gaps[0]
        patients = np.unique(gi[y == c])
        held = {d: patients[where[patients] == d] for d in active}
        donor = max(active, key=lambda d: len(held[d]))
        if len(held[donor]) < 2:
            break
        move = min(held[donor], key=lambda p: (size[p], rank[p]))
        where[move] = s
    rows = where[gi]
    gaps = [(s, c) for c in classes for s in active if not np.any(y[rows == s] == c)]
    if gaps:
        c = gaps[0][1]
        raise FolderDatasetError(
            f"no patient-level split puts class {_class_names(class_names, c)} ({len(np.unique(gi[y == c]))} "
            f"patient(s)) in every split: add patients of this class, or drop or merge it, or set val_fraction=0 "
            f"/ test_fraction=0.")


# --- reading the CSV and the images --------------------------------------------------------------------------------

def _read_csv(csv_path: Path) -> pd.DataFrame:
    if not csv_path.is_file():
        raise DatasetNotFoundError(f"CSV not found: {csv_path}. Give the path of a CSV with the header `{HEADER}` "
                                   f"and one row per image.")
    try:
        df = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise FolderDatasetError(f"{csv_path} is empty: write the header `{HEADER}` and one row per image.") from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in ("path", "label") if c not in df.columns]
    if missing:
        raise FolderDatasetError(f"{csv_path} lacks column(s) {', '.join(missing)}: its header is "
                                 f"`{','.join(map(str, df.columns))}`, expected `{HEADER}` as the first row.")
    if df.empty:
        raise FolderDatasetError(f"{csv_path} has a header but no rows: add one row `{HEADER}` per image.")
    cols = ["path", "label"] + (["patient_id"] if "patient_id" in df.columns else [])
    df = df[cols].apply(lambda col: col.str.strip())
    for col in cols:
        blank = np.flatnonzero(df[col].to_numpy() == "")
        if len(blank):
            lines = ", ".join(str(i + 2) for i in blank[:5]) + (" ..." if len(blank) > 5 else "")
            fix = "drop the patient_id column if patients are unknown" if col == "patient_id" else "drop those rows"
            raise FolderDatasetError(f"{csv_path}: empty {col!r} on line(s) {lines}: fill them in or {fix}.")
    return df


def _encode_labels(values: np.ndarray, csv_path: Path) -> tuple[np.ndarray, list[str]]:
    """Class indices and the sorted class names: integers are indices 0..K-1, anything else names a class."""
    if all(re.fullmatch(r"[+-]?\d+", v) for v in values):
        idx = values.astype(np.int64)
        if idx.min() < 0:
            raise FolderDatasetError(f"{csv_path}: negative class index {idx.min()}: integer labels are class "
                                     f"indices 0..K-1 (or write class names instead).")
        absent = sorted(set(range(int(idx.max()) + 1)) - set(idx.tolist()))
        if absent:
            raise FolderDatasetError(f"{csv_path}: no image has class index {absent[0]}: integer labels are class "
                                     f"indices 0..K-1 with every class present; renumber them or write class names.")
        return idx, [str(i) for i in range(int(idx.max()) + 1)]
    names = sorted(set(values))
    return np.searchsorted(names, values).astype(np.int64), names


def _pixels(img: Image.Image, path: Path) -> np.ndarray:
    """(H, W) for grayscale, (H, W, 3) for colour, uint8."""
    mode = img.mode
    if mode in ("1", "L", "LA"):
        return np.asarray(img.convert("L"))
    if mode.startswith("I"):  # 16-bit grayscale (PNG opens as I;16 or I): full range onto 0..255
        return np.clip(np.rint(np.asarray(img, dtype=np.float64) / 257), 0, 255).astype(np.uint8)
    if mode == "F":
        raise FolderDatasetError(f"{path} holds 32-bit float pixels: save it as an 8- or 16-bit image (PNG).")
    return np.asarray(img.convert("RGB"))


def _resolve(csv_path: Path, p: str) -> Path:
    path = Path(p).expanduser()
    return path if path.is_absolute() else csv_path.parent / path


def folder_dataset(csv_path: str | Path, name: str | None = None, size: int | None = None,
                   val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                   register: bool = False) -> DatasetSpec:
    """A `DatasetSpec` over the images listed in `csv_path` (see the module doc for the CSV).

    `size`: the square side images are resized to (default: the first image's side, its shorter one when not
    square). BINARY for two classes, MULTICLASS otherwise; labels (N, 1) int64; `labels` maps str(index) to the
    class name. The split is `patient_split(labels, patient_ids, val_fraction, test_fraction, seed)`. The
    fingerprint is the md5 of the CSV's bytes and every image file's bytes (in CSV order), as read. `load` serves
    only `size` (its `sizes`); `root` is ignored. `register=True` adds the spec to `DATASETS` (name: `name`, else
    the CSV's stem).
    """
    csv_path = Path(csv_path).expanduser().resolve()
    df = _read_csv(csv_path)
    name = name or csv_path.stem
    paths = [_resolve(csv_path, p) for p in df["path"]]
    absent = [(i, p) for i, p in enumerate(paths) if not p.is_file()]
    if absent:
        shown = "; ".join(f"{p} (line {i + 2})" for i, p in absent[:5]) + (" ..." if len(absent) > 5 else "")
        raise DatasetNotFoundError(
            f"{len(absent)} image file(s) listed in {csv_path} not found: {shown}. Fix the paths in the CSV "
            f"(relative paths are read from the CSV's folder {csv_path.parent}) or remove those rows.")
    y, class_names = _encode_labels(df["label"].to_numpy(dtype=str), csv_path)
    if len(class_names) < 2:
        raise FolderDatasetError(f"{csv_path} has one class ({class_names[0]!r}): a classification dataset needs "
                                 f"at least two; add images of another class.")
    groups = df["patient_id"].to_numpy(dtype=str) if "patient_id" in df.columns else None
    splits = patient_split(y, groups, val_fraction, test_fraction, seed, class_names=class_names)

    md5 = hashlib.md5(csv_path.read_bytes())
    images: np.ndarray | None = None
    first: tuple[Path, str] | None = None
    for i, path in enumerate(paths):
        data = path.read_bytes()
        md5.update(data)
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                arr = _pixels(img, path)
        except (UnidentifiedImageError, OSError) as e:
            raise FolderDatasetError(f"{path} (line {i + 2} of {csv_path}) is not a readable image ({e}): replace "
                                     f"it or remove its row.") from None
        kind = "grayscale" if arr.ndim == 2 else "RGB"
        if first is None:
            first = (path, kind)
            size = size or min(arr.shape[:2])
            if int(size) < 1:
                raise FolderDatasetError(f"size must be a positive number of pixels, not {size}.")
            size = int(size)
            images = np.empty((len(paths), size, size) + arr.shape[2:], np.uint8)
        elif kind != first[1]:
            raise FolderDatasetError(
                f"mixed grayscale and RGB images: {first[0]} is {first[1]}, {path} is {kind}. Convert them all to "
                f"one mode (e.g. PIL's img.convert('L') or img.convert('RGB')) and save them again.")
        if arr.shape[:2] != (size, size):
            arr = np.asarray(Image.fromarray(arr).resize((size, size), Image.Resampling.BILINEAR))
        images[i] = arr
    assert images is not None and first is not None and size is not None
    labels = y[:, None]
    # the split settings are part of the data a result was computed on: same files, other split → other print
    md5.update(f"split:{val_fraction}:{test_fraction}:{seed}".encode())
    fingerprint_md5 = md5.hexdigest()
    built_size = size

    def load(split: Split | str, size: int = built_size, root: Path | None = None) -> Arrays:
        if size != built_size:
            raise FolderDatasetError(f"dataset {name!r} was built at {built_size} px, not {size}: build it with "
                                     f"folder_dataset({str(csv_path)!r}, size={size}) or ask for {built_size}.")
        idx = splits[Split(split)]
        return images[idx], labels[idx]

    def fingerprint(size: int = built_size, root: Path | None = None) -> str:
        return fingerprint_md5

    task = Task.BINARY if len(class_names) == 2 else Task.MULTICLASS
    spec = DatasetSpec(
        name=name, task=task, n_channels=1 if first[1] == "grayscale" else 3,
        labels={str(i): c for i, c in enumerate(class_names)}, n_samples={s.value: len(splits[s]) for s in Split},
        sizes=(built_size,), license="user-provided", citation="", load=load, fingerprint=fingerprint,
        description=f"{len(paths)} images listed in {csv_path}",
    )
    if register:
        try:
            DATASETS.add(spec)
        except DuplicateNameError:
            raise DuplicateNameError(f"dataset {name!r} is already registered: pass another name= to "
                                     f"folder_dataset.") from None
    return spec
