"""Your own images as a dataset: a folder with one subfolder per class, or a CSV
`path,label[,patient_id][,split]` (header row required) and the files it names.

    path,label,patient_id,split
    images/p001_a.png,pneumonia,p001,train
    images/p001_b.png,pneumonia,p001,train
    /data/xray/p002.dcm,normal,p002,test

`path` is relative to the CSV's folder or absolute; `label` is an integer class index (0..K-1) or a class name
(names are sorted to give the indices), or several labels joined by `|` for a multi-label task (`a|b`; an empty
label: none present); `patient_id` is optional (without it every row is its own patient); `split` is optional
(`train`/`val`/`test`: the user's own split, checked; rows without `val` have validation drawn from train; without
the column the split is made here). In the folder layout (`PATH/<class>/**/<image>`), the subfolder names are the
classes and every image is its own patient; `PATH/{train,val[,test]}/<class>/...` gives the split by folder (with
no `test/`, `val/` is the held-out test set, as the tutorials that ship this layout report on it).

The task is inferred only where that is unambiguous: `|` in a label → multi-label, two classes → binary,
otherwise multi-class; ordinal only when asked (`task="ordinal"`: integer grades 0..K-1, or names in sorted order).
Images are read by `benchmarks.data.images` (PNG/JPEG/TIFF, 16-bit windowed by a recorded percentile rule, DICOM
through pydicom) and brought to one square size by a resize policy (`pad`, aspect kept; or `squash`). Grayscale
stays one channel unless some image is colour: then all are RGB (grey replicated). How is recorded in `reading`.

Without a split column the split is stratified and patient-level (`patient_split`): no patient is in two splits,
class proportions are kept approximately, and the same seed gives the same split; rows holding the same image
(same bytes) count as one patient, so no image is in two splits. The fingerprint is a hash of the content: every
image's bytes with its label, patient and split, and the split and reading settings.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from benchmarks.data._spec import DATASETS, Arrays, DatasetNotFoundError, DatasetSpec, Split, Task
from benchmarks.data.images import (
    DICOM_SUFFIXES,
    RESIZE_POLICIES,
    ImageReadError,
    Pixels,
    Resize,
    as_channels,
    fit,
    read_image,
)
from zoo import MedzooError
from zoo.errors import DuplicateNameError

HEADER = "path,label[,patient_id][,split]"
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


# --- reading the table, the labels and the images ------------------------------------------------------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", *DICOM_SUFFIXES)


def _subfolders(root: Path) -> list[Path]:
    return [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")]


def _class_rows(root: Path) -> list[tuple[str, str]]:
    return [(str(f), d.name) for d in _subfolders(root)
            for f in sorted(d.rglob("*")) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]


def _ignored(root: Path) -> str:
    """The files a folder layout passes over (not images by their suffix; hidden ones aside), for the record."""
    kinds = Counter(f.suffix.lower() or "(no suffix)" for f in root.rglob("*")
                    if f.is_file() and not f.name.startswith(".") and f.suffix.lower() not in IMAGE_SUFFIXES)
    return "; ignored (not image files): " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) if kinds else ""


def _table_of_folder(root: Path) -> pd.DataFrame:
    """The folder layout `root/<class>/**/<image>` as rows (path, label); or, when the subfolders are split names
    (`train/`, `val/`[, `test/`] in any case, each with class subfolders, as many tutorials ship data), rows (path,
    label, split) — with no labelled `test/`, `val/` is the held-out test set (what such tutorials report on) and
    validation is drawn from `train/` (see `folder_dataset`)."""
    by_split = {d.name.lower(): d for d in _subfolders(root)}
    if "train" in by_split:
        other = sorted(set(by_split) - {s.value for s in Split})
        if other:
            raise FolderDatasetError(f"{root} has a train/ folder and {', '.join(other)}/: split folders are named "
                                     f"train/, val/ and test/ (each with one subfolder per class); rename them, or "
                                     f"move the class folders up if train is a class.")
        labelled = {name: _class_rows(d) for name, d in by_split.items()}
        if not labelled["train"]:
            raise FolderDatasetError(f"{by_split['train']} holds no images in class subfolders: put each class's "
                                     f"images in train/<class>/ (and val/<class>/, test/<class>/).")
        test = "test" if labelled.get("test") else "val"  # a test/ of loose, unlabelled images is not a split
        rows = [(path, label, "test" if name == test else name) for name, found in labelled.items()
                if name != "test" or test == "test" for path, label in found]
        return pd.DataFrame(rows, columns=["path", "label", "split"])
    rows = _class_rows(root)
    if not rows:
        raise FolderDatasetError(
            f"{root} holds no images in class subfolders: put each class's images in a subfolder named after the "
            f"class ({root}/<class>/<image>.png; {', '.join(IMAGE_SUFFIXES)}), or give a CSV `{HEADER}`.")
    return pd.DataFrame(rows, columns=["path", "label"])


def _read_csv(csv_path: Path) -> pd.DataFrame:
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
    known = ("path", "label", "patient_id", "split")
    for c in df.columns:
        if c not in known:
            close = difflib.get_close_matches(c.replace(" ", "_"), known, n=1, cutoff=0.4)
            raise FolderDatasetError(f"{csv_path}: unknown column {c!r}"
                                     + (f" (did you mean {close[0]!r}?)" if close else "")
                                     + f": the columns are `{HEADER}`; rename it, or remove it (an ignored patient "
                                       f"column would let one patient's images into two splits).")
    cols = ["path", "label"] + [c for c in ("patient_id", "split") if c in df.columns]
    df = df[cols].apply(lambda col: col.str.strip())
    for col in [c for c in cols if c != "label"]:  # an empty label is a multi-label row with no label present
        blank = np.flatnonzero(df[col].to_numpy() == "")
        if len(blank):
            fix = ("drop the patient_id column if patients are unknown" if col == "patient_id" else
                   "drop the split column to have the split made here" if col == "split" else "drop those rows")
            raise FolderDatasetError(f"{csv_path}: empty {col!r} on line(s) {_lines(blank)}: fill them in or {fix}.")
    if "split" in df.columns:
        df["split"] = df["split"].str.lower()
        bad = np.flatnonzero(~df["split"].isin([s.value for s in Split]).to_numpy())
        if len(bad):
            raise FolderDatasetError(f"{csv_path}: split {df['split'].iloc[bad[0]]!r} on line(s) {_lines(bad)}: "
                                     f"a split is one of {', '.join(s.value for s in Split)}.")
    return df


def _lines(rows: np.ndarray | Sequence[int]) -> str:
    """CSV line numbers (the header is line 1) of 0-based rows, the first five."""
    return ", ".join(str(int(i) + 2) for i in rows[:5]) + (" ..." if len(rows) > 5 else "")


def _encode_labels(values: np.ndarray, source: Path) -> tuple[np.ndarray, list[str]]:
    """Class indices and the sorted class names: integers are indices 0..K-1, anything else names a class."""
    if all(re.fullmatch(r"[+-]?\d+", v) for v in values):
        idx = values.astype(np.int64)
        if idx.min() < 0:
            raise FolderDatasetError(f"{source}: negative class index {idx.min()}: integer labels are class "
                                     f"indices 0..K-1 (or write class names instead).")
        absent = sorted(set(range(int(idx.max()) + 1)) - set(idx.tolist()))
        if absent:
            raise FolderDatasetError(f"{source}: no image has class index {absent[0]}: integer labels are class "
                                     f"indices 0..K-1 with every class present; renumber them or write class names.")
        return idx, [str(i) for i in range(int(idx.max()) + 1)]
    names = sorted(set(values.tolist()))
    return np.searchsorted(names, values).astype(np.int64), names


def _labels(values: np.ndarray, source: Path, task: Task | None) -> tuple[np.ndarray, list[str], Task]:
    """(labels (N, 1) or multi-hot (N, K), class names, task): the task inferred only where unambiguous."""
    if task is Task.MULTILABEL or (task is None and any("|" in v for v in values)):
        sets = [sorted({t.strip() for t in v.split("|") if t.strip()}) for v in values.tolist()]
        tokens = {t for s in sets for t in s}
        numeric = all(re.fullmatch(r"\d+", t) for t in tokens)
        names = sorted(tokens, key=int) if numeric else sorted(tokens)
        y = np.zeros((len(values), len(names)), np.int64)
        column = {n: k for k, n in enumerate(names)}
        for i, s in enumerate(sets):
            y[i, [column[t] for t in s]] = 1
        return y, names, Task.MULTILABEL
    if any(v == "" for v in values):
        raise FolderDatasetError(f"{source}: empty label on line(s) {_lines(np.flatnonzero(values == ''))}: fill "
                                 f"them in or drop those rows (an empty label means 'none present' only in a "
                                 f"multi-label table, which has `a|b` labels).")
    idx, names = _encode_labels(values, source)
    inferred = Task.BINARY if len(names) == 2 else Task.MULTICLASS
    if task not in (None, inferred, Task.ORDINAL):
        raise FolderDatasetError(f"{source} has {len(names)} classes ({', '.join(names[:6])}): that is a "
                                 f"{inferred.value} task, not {task.value}; leave the task out to infer it.")
    return idx[:, None], names, task or inferred


def _check_counts(y: np.ndarray, names: list[str], source: Path) -> None:
    """At least two classes, and no class with a single image (almost always a typo in a label)."""
    if len(names) < 2:
        raise FolderDatasetError(f"{source} has one class ({names[0]!r}): a classification dataset needs at least "
                                 f"two; add images of another class.")
    counts = y.sum(0) if y.shape[1] > 1 else np.bincount(y[:, 0], minlength=len(names))
    for c in np.flatnonzero(counts == 1):
        others = [n for k, n in enumerate(names) if counts[k] > 1]
        close = difflib.get_close_matches(names[c], others, n=1)
        rows = np.flatnonzero(y[:, c] == 1) if y.shape[1] > 1 else np.flatnonzero(y[:, 0] == c)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise FolderDatasetError(f"{source}: label {names[c]!r} is on one image only (line {_lines(rows)}), probably "
                                 f"a typo.{hint} Fix the label, or add more images of that class.")


def _checked_split(df: pd.DataFrame, hashes: list[str], source: Path, allow_duplicates: bool, y: np.ndarray,
                   names: list[str]) -> tuple[dict[Split, np.ndarray], int]:
    """The user's own split column, checked: every split non-empty, no patient and no image in two splits (unless
    `allow_duplicates`: then how many images are in two splits)."""
    where = df["split"].to_numpy()
    for s in (Split.TRAIN, Split.TEST):  # no val rows: validation is drawn from train
        if not (where == s.value).any():
            raise FolderDatasetError(f"{source}: no image in split {s.value!r}: train and test each need images, "
                                     f"val may be drawn from train (or leave the split to medzoo).")
    for s in Split:
        rows = where == s.value
        if rows.any() and not (s is Split.VAL and y.shape[1] > 1):
            present = y[rows].any(0) if y.shape[1] > 1 else np.isin(np.arange(len(names)), y[rows, 0])
            if not present.all():
                raise FolderDatasetError(
                    f"{source}: split {s.value!r} has no image of class {names[int(np.flatnonzero(~present)[0])]!r}: "
                    f"every class needs images in train, val and test to be learnt and scored; move some there "
                    f"(or leave the split to medzoo, which stratifies it).")
    checks = [("patient", df["patient_id"].to_numpy())] if "patient_id" in df.columns else []
    shared = 0
    for what, keys in [*checks, ("image (same file content)", np.asarray(hashes))]:
        seen: dict[str, tuple[str, int]] = {}
        for i, (k, s) in enumerate(zip(keys, where, strict=True)):
            first = seen.setdefault(k, (s, i))
            if first[0] == s:
                continue
            if what.startswith("image") and allow_duplicates:
                shared += 1
                continue
            j = first[1]
            extra = (" (or allow_duplicates=True / --allow-duplicates to keep a published split as it is: "
                     "recorded)" if what.startswith("image") else "")
            raise FolderDatasetError(
                f"{source}: the same {what} is in split {first[0]!r} (line {j + 2}: {df['path'].iloc[j]}) and "
                f"in split {s!r} (line {i + 2}: {df['path'].iloc[i]}): a test image must be unseen in training; "
                f"put all of its rows in one split{extra}.")
    return {s: np.flatnonzero(where == s.value) for s in Split}, shared


def _groups(patients: np.ndarray, hashes: list[str]) -> np.ndarray:
    """Each row's group for the split: its patient, with patients that share an image (same bytes) merged."""
    parent = {p: p for p in patients}

    def root(p: str) -> str:
        while parent[p] != p:
            p = parent[p]
        return p

    first: dict[str, str] = {}
    for p, h in zip(patients, hashes, strict=True):
        a, b = root(first.setdefault(h, p)), root(p)
        if a != b:
            parent[b] = a
    return np.array([root(p) for p in patients], dtype=object)


def _resolve(base: Path, p: str) -> Path:
    path = Path(p).expanduser()
    return path if path.is_absolute() else base / path


def _read_all(paths: list[Path], source: Path) -> tuple[list[Pixels], list[str]]:
    """Every image's pixels and sha256; one error listing every unreadable file (none is skipped)."""
    pixels, hashes, bad = [], [], []
    for path in paths:
        try:
            data = path.read_bytes()
            hashes.append(hashlib.sha256(data).hexdigest())
            pixels.append(read_image(path, data))
        except ImageReadError as e:
            bad.append(str(e))
        except OSError as e:
            bad.append(f"{path} cannot be read ({e.strerror or e})")
    if bad:
        shown = "\n  ".join(bad[:10]) + (f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise FolderDatasetError(f"{len(bad)} of the {len(paths)} images listed by {source} cannot be read:\n  "
                                 f"{shown}\nReplace or remove them: none is skipped silently.")
    return pixels, hashes


def folder_dataset(path: str | Path, name: str | None = None, size: int | None = None,
                   val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0, *,
                   task: Task | str | None = None, resize: Resize = "pad", mixed_size: int | None = None,
                   allow_duplicates: bool = False, register: bool = False) -> DatasetSpec:
    """A `DatasetSpec` over a user's images: `path` is a folder with one subfolder per class, or a CSV (see the
    module doc).

    `size`: the square side images are brought to by `resize`; default: their own size when all are squares of one
    size (nothing resampled: a model's input policy resizes them, as for MedMNIST), else `mixed_size` (default:
    the first image's shorter side). Labels:
    (N, 1) int64, or (N, K) 0/1 for a multi-label task; `labels` maps str(index) to the class name. The split is
    the CSV's `split` column when it has one, else `patient_split(labels, patients, val_fraction, test_fraction,
    seed)`; a given split with the same image in two splits is refused unless `allow_duplicates` (a published
    split kept as it is, e.g. BreastMNIST's: recorded). The fingerprint hashes the content (images, labels, patients, splits, settings). `load` serves only
    `size` (its `sizes`); `root` is ignored. `register=True` adds the spec to `DATASETS` (name: `name`, else the
    CSV's stem or the folder's name).
    """
    source = Path(path).expanduser().resolve()
    if source.is_dir():
        df, base = _table_of_folder(source), source
    elif source.is_file():
        df, base = _read_csv(source), source.parent
    else:
        raise DatasetNotFoundError(f"{source} not found: give a folder with one subfolder per class, or a CSV with "
                                   f"the header `{HEADER}` and one row per image.")
    if resize not in RESIZE_POLICIES:
        raise FolderDatasetError(f"unknown resize policy {resize!r}: use one of {', '.join(RESIZE_POLICIES)}")
    name = name or source.stem
    paths = [_resolve(base, p) for p in df["path"]]
    absent = [(i, p) for i, p in enumerate(paths) if not p.is_file()]
    if absent:
        shown = "; ".join(f"{p} (line {i + 2})" for i, p in absent[:5]) + (" ..." if len(absent) > 5 else "")
        raise DatasetNotFoundError(
            f"{len(absent)} image file(s) listed in {source} not found: {shown}. Fix the paths in the CSV "
            f"(relative paths are read from the CSV's folder {base}) or remove those rows.")
    y, class_names, the_task = _labels(df["label"].to_numpy(dtype=str), source,
                                       Task(task) if task is not None else None)
    _check_counts(y, class_names, source)
    pixels, hashes = _read_all(paths, source)
    patients = df["patient_id"].to_numpy(dtype=str) if "patient_id" in df.columns else np.array(
        [f"row{i}" for i in range(len(df))])
    if "split" in df.columns:
        splits, shared = _checked_split(df, hashes, source, allow_duplicates, y, class_names)
        split_how = ("the split folders" if source.is_dir() else "the CSV's split column") + (
            f" ({shared} image(s) also in another split, kept as given)" if shared else "")
        if not len(splits[Split.VAL]):
            train = splits[Split.TRAIN]
            strata = y[train, 0] if y.shape[1] == 1 else _rarest(y[train])
            part = patient_split(strata, _groups(patients[train], [hashes[i] for i in train]), val_fraction, 0.0,
                                 seed, class_names=_strata_names(y, class_names))
            splits |= {Split.TRAIN: train[part[Split.TRAIN]], Split.VAL: train[part[Split.VAL]]}
            split_how += f"; val drawn from train (stratified, patient-level: {val_fraction:g}, seed {seed})"
    else:
        strata = y[:, 0] if y.shape[1] == 1 else _rarest(y)
        splits = patient_split(strata, _groups(patients, hashes), val_fraction, test_fraction, seed,
                               class_names=_strata_names(y, class_names))
        split_how = (f"stratified, patient-level: val {val_fraction:g}, test {test_fraction:g}, seed {seed}")

    shapes = {p.array.shape[:2] for p in pixels}
    common = next(iter(shapes)) if len(shapes) == 1 else None
    native = common[0] if common is not None and common[0] == common[1] else None
    size = int(size or native or mixed_size or min(pixels[0].array.shape[:2]))
    if size < 1:
        raise FolderDatasetError(f"size must be a positive number of pixels, not {size}.")
    colour = any(p.array.ndim == 3 for p in pixels)
    images = np.empty((len(paths), size, size) + ((3,) if colour else ()), np.uint8)
    for i, p in enumerate(pixels):
        images[i] = fit(as_channels(p.array, 3 if colour else 1), size, resize)
    hows = Counter(p.how.split(" [")[0] for p in pixels)
    channels = ("grayscale" if not colour else "RGB (grey images replicated)"
                if any(p.array.ndim == 2 for p in pixels) else "RGB")
    reading = (f"{'; '.join(f'{h}: {n}' for h, n in sorted(hows.items()))}; {channels}; resize {resize} to "
               f"{size} px; split: {split_how}" + (_ignored(source) if source.is_dir() else ""))
    where = np.empty(len(paths), dtype=object)
    for s, idx in splits.items():
        where[idx] = s.value
    digest = hashlib.sha256()
    for h, lab, pat, s in zip(hashes, map(str, y.tolist()), patients, where, strict=True):
        digest.update(f"{h}\t{lab}\t{pat}\t{s}\n".encode())
    digest.update(f"classes:{'|'.join(class_names)};task:{the_task.value};{reading}".encode())
    fingerprint_hex = digest.hexdigest()
    built_size = size

    def load(split: Split | str, size: int = built_size, root: Path | None = None) -> Arrays:
        if size != built_size:
            raise FolderDatasetError(f"the images of {source} were read at {built_size} px, not {size}: read them "
                                     f"with folder_dataset({str(source)!r}, size={size}) or ask for {built_size}.")
        idx = splits[Split(split)]
        return images[idx], y[idx]

    def fingerprint(size: int = built_size, root: Path | None = None) -> str:
        return fingerprint_hex

    spec = DatasetSpec(
        name=name, task=the_task, n_channels=3 if colour else 1,
        labels={str(i): c for i, c in enumerate(class_names)}, n_samples={s.value: len(splits[s]) for s in Split},
        sizes=(built_size,), license="user-provided", citation="", load=load, fingerprint=fingerprint,
        description=f"{len(paths)} images from {source}", reading=reading, resize=resize,
    )
    if register:
        try:
            DATASETS.add(spec)
        except DuplicateNameError:
            raise DuplicateNameError(f"dataset {name!r} is already registered: pass another name= to "
                                     f"folder_dataset.") from None
    return spec


def _strata_names(y: np.ndarray, class_names: list[str]) -> list[str]:
    """Names of the split's strata: the classes; multi-label rows are stratified by their rarest label, or none."""
    return class_names if y.shape[1] == 1 else [*class_names, "(no label)"]


def _rarest(y: np.ndarray) -> np.ndarray:
    """A multi-label row's stratum for the split: its rarest present label (K for a row with none)."""
    counts = y.sum(0)
    order = np.where(y == 1, counts[None, :], np.iinfo(np.int64).max)
    return np.where(y.any(1), order.argmin(1), y.shape[1])
