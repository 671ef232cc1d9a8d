"""Folder datasets (your own PNGs + CSV, patient-level split) and the test-only synthetic datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.data import DATASETS, DatasetNotFoundError, Split, Task, synthetic
from benchmarks.data.folder import FolderDatasetError, folder_dataset, patient_split
from zoo.errors import DuplicateNameError

CLASSES = ("benign", "malignant", "normal")


def make_folder(root: Path, patients: dict[str, int] | None = None, *, rgb: bool = False, side: int = 20,
                patient_column: bool = True, csv_name: str = "labels.csv") -> Path:
    """PNGs whose brightness encodes the class (40 + 80 * index), 1-3 images per patient; returns the CSV."""
    patients = patients or {c: 12 for c in CLASSES}
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True, exist_ok=True)
    rows = ["path,label,patient_id" if patient_column else "path,label"]
    for ci, cls in enumerate(sorted(patients)):
        for p in range(patients[cls]):
            for k in range(1 + (p % 3)):
                shape = (side, side, 3) if rgb else (side, side)
                pixels = np.clip(40 + 80 * ci + rng.integers(-5, 6, shape), 0, 255).astype(np.uint8)
                name = f"img/{cls}_{p}_{k}.png"
                Image.fromarray(pixels).save(root / name)
                rows.append(f"{name},{cls},{cls}-{p}" if patient_column else f"{name},{cls}")
    csv = root / csv_name
    csv.write_text("\n".join(rows) + "\n")
    return csv


@pytest.fixture()
def csv(tmp_path: Path) -> Path:
    return make_folder(tmp_path)


def _csv_columns(csv: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = [line.split(",") for line in csv.read_text().splitlines()[1:]]
    return np.searchsorted(CLASSES, [r[1] for r in rows]), np.array([r[2] for r in rows])


def test_loads_images_labels_and_facts(csv: Path) -> None:
    ds = folder_dataset(csv)
    assert ds.name == "labels" and ds.task is Task.MULTICLASS and ds.n_channels == 1 and ds.sizes == (20,)
    assert dict(ds.labels) == {"0": "benign", "1": "malignant", "2": "normal"}
    total = 0
    for split in Split:
        images, labels = ds.load(split, 20, None)
        n = ds.n_samples[split.value]
        assert images.shape == (n, 20, 20) and images.dtype == np.uint8
        assert labels.shape == (n, 1) and labels.dtype == np.int64
        # the right label stays with the right image: brightness is 40 + 80 * class
        np.testing.assert_allclose(images.reshape(n, -1).mean(1), 40 + 80 * labels[:, 0], atol=1.5)
        total += n
    assert total == len(csv.read_text().splitlines()) - 1


def test_resize_and_wrong_size(csv: Path) -> None:
    ds = folder_dataset(csv, size=8)
    images, _ = ds.load("train", 8)
    assert images.shape[1:] == (8, 8) and ds.sizes == (8,)
    with pytest.raises(FolderDatasetError, match=r"labels\.csv were read at 8 px, not 28"):
        ds.load("train", 28)


@pytest.mark.parametrize("seed", range(5))
def test_patient_split_is_patient_level_stratified_and_sized(csv: Path, seed: int) -> None:
    y, groups = _csv_columns(csv)
    split = patient_split(y, groups, val_fraction=0.1, test_fraction=0.2, seed=seed)
    idx = {s: split[s] for s in Split}
    assert sorted(np.concatenate(list(idx.values())).tolist()) == list(range(len(y)))  # a partition of the rows
    patients = {s: set(groups[i]) for s, i in idx.items()}
    assert not patients[Split.TRAIN] & patients[Split.VAL] and not patients[Split.TRAIN] & patients[Split.TEST]
    assert not patients[Split.VAL] & patients[Split.TEST]
    for s in Split:
        assert set(y[idx[s]]) == {0, 1, 2}, s  # every class in every split, train included
    for s, f in ((Split.VAL, 0.1), (Split.TEST, 0.2)):
        assert abs(len(idx[s]) / len(y) - f) < 0.08, (s, len(idx[s]))
    ds = folder_dataset(csv, seed=seed)
    assert {s.value: len(i) for s, i in idx.items()} == dict(ds.n_samples)


def test_patient_split_is_deterministic_and_seeded(csv: Path) -> None:
    y, groups = _csv_columns(csv)
    a, b = patient_split(y, groups, 0.1, 0.2, 3), patient_split(y, groups, 0.1, 0.2, 3)
    assert all(np.array_equal(a[s], b[s]) for s in Split)
    others = [patient_split(y, groups, 0.1, 0.2, s)[Split.TEST] for s in range(4, 8)]
    assert any(not np.array_equal(a[Split.TEST], o) for o in others)


def test_patient_split_keeps_a_rare_class_in_every_split() -> None:
    y = np.array([0] * 40 + [1] * 40 + [2] * 3)
    split = patient_split(y, None, 0.1, 0.2, seed=1)
    for s in Split:
        assert 2 in y[split[s]], s
    # two rare classes (5 and 4 patients of 1-4 images) with 10 folds: no single fold holds both
    counts = np.random.default_rng(5).integers(1, 5, 40)
    groups = np.repeat(np.arange(40), counts)
    y = np.repeat(np.array([0] * 5 + [1] * 18 + [2] * 4 + [3] * 13), counts)
    for seed in range(3):
        split = patient_split(y, groups, 0.1, 0.2, seed)
        assert all(set(y[split[s]]) == {0, 1, 2, 3} for s in Split)
        owners = [set(groups[split[s]]) for s in Split]
        assert sum(map(len, owners)) == len(set.union(*owners)) == 40  # each patient in exactly one split
    no_val = patient_split(y, None, 0.0, 0.25, seed=1)
    assert len(no_val[Split.VAL]) == 0 and abs(len(no_val[Split.TEST]) / len(y) - 0.25) < 0.08


def test_binary_without_patient_ids_and_rgb(tmp_path: Path) -> None:
    csv = make_folder(tmp_path / "a", {"cat": 10, "dog": 10}, rgb=True, patient_column=False)
    ds = folder_dataset(csv, seed=2)
    assert ds.task is Task.BINARY and ds.n_channels == 3 and dict(ds.labels) == {"0": "cat", "1": "dog"}
    images, labels = ds.load("test", 20)
    assert images.shape == (ds.n_samples["test"], 20, 20, 3) and set(labels[:, 0]) == {0, 1}


def test_integer_labels_absolute_paths(tmp_path: Path) -> None:
    csv = make_folder(tmp_path, {"0": 8, "1": 8})
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join([lines[0]] + [f"{tmp_path / ln.split(',')[0]},{','.join(ln.split(',')[1:])}"
                                           for ln in lines[1:]]) + "\n")
    ds = folder_dataset(csv)
    assert dict(ds.labels) == {"0": "0", "1": "1"} and ds.task is Task.BINARY


def test_fingerprint_is_the_content_images_and_labels(csv: Path, tmp_path: Path) -> None:
    before = folder_dataset(csv).fingerprint(20, None)
    assert folder_dataset(csv).fingerprint(20, None) == before and len(before) == 64
    csv.write_text(csv.read_text() + "\n")  # the same content written differently: the same dataset
    assert folder_dataset(csv).fingerprint(20, None) == before
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "img" / "normal_3_0.png")
    after = folder_dataset(csv).fingerprint(20, None)
    assert after != before
    lines = csv.read_text().splitlines()  # one label changed: another dataset
    lines[1] = lines[1].replace("benign", "malignant")
    csv.write_text("\n".join(lines) + "\n")
    assert folder_dataset(csv).fingerprint(20, None) != after


def test_fingerprint_follows_the_split_settings(csv: Path) -> None:
    """Same files, another split: another test set, so results must not share a data fingerprint."""
    base = folder_dataset(csv).fingerprint(20, None)
    assert folder_dataset(csv, seed=1).fingerprint(20, None) != base
    assert folder_dataset(csv, test_fraction=0.3).fingerprint(20, None) != base


def test_register(csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DATASETS, "_entries", dict(DATASETS._entries))  # leave the global registry as it was
    ds = folder_dataset(csv, register=True)
    assert DATASETS.get("labels") is ds and not ds.test_only
    with pytest.raises(DuplicateNameError, match="pass another name="):
        folder_dataset(csv, register=True)
    mine = folder_dataset(csv, name="mine", register=True)
    assert DATASETS.get("mine") is mine


# --- errors: each names the problem and the fix ---------------------------------------------------------------------

def test_missing_csv(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"nope\.csv not found.*subfolder per class.*path,label\[,patient_id\]"):
        folder_dataset(tmp_path / "nope.csv")


def test_missing_columns(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("file,class\na.png,0\n")
    with pytest.raises(FolderDatasetError, match=r"lacks column\(s\) path, label.*expected `path,label\[,patient_id\]"):
        folder_dataset(bad)


def test_missing_image_is_named(csv: Path, tmp_path: Path) -> None:
    (tmp_path / "img" / "malignant_4_1.png").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"malignant_4_1\.png \(line \d+\).*Fix the paths"):
        folder_dataset(csv)


def test_too_few_patients_per_class(tmp_path: Path) -> None:
    csv = make_folder(tmp_path, {"common": 10, "rare": 2})  # "rare": 2 patients, 3 images
    with pytest.raises(FolderDatasetError, match=r"class 'rare' has 2 patient\(s\) \(3 image\(s\)\).*add images"):
        folder_dataset(csv)
    assert folder_dataset(csv, val_fraction=0).n_samples["val"] == 0  # the fix the message names works


def test_mixed_gray_and_rgb_is_rgb_with_grey_replicated(csv: Path, tmp_path: Path) -> None:
    Image.fromarray(np.full((20, 20, 3), (10, 20, 30), np.uint8)).save(tmp_path / "img" / "normal_5_1.png")
    ds = folder_dataset(csv)
    assert ds.n_channels == 3 and "RGB (grey images replicated)" in ds.reading
    images = np.concatenate([ds.load(s, 20)[0] for s in Split])
    assert images.shape[-1] == 3 and (images[..., 0] == images[..., 1]).all(-1).all(-1).sum() == len(images) - 1


# --- synthetic datasets ---------------------------------------------------------------------------------------------

SYNTHETIC = {"synthetic_binary": (Task.BINARY, 2, 1), "synthetic_multiclass": (Task.MULTICLASS, 4, 1),
             "synthetic_multilabel": (Task.MULTILABEL, 3, 1), "synthetic_ordinal": (Task.ORDINAL, 5, 1),
             "synthetic_rgb": (Task.MULTICLASS, 4, 3)}


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_specs_match_what_they_load(name: str) -> None:
    ds = DATASETS.get(name)
    task, k, channels = SYNTHETIC[name]
    assert ds.test_only and ds.task is task and ds.num_classes == k and ds.n_channels == channels
    assert name not in DATASETS.names(where=lambda d: not d.test_only)  # hidden from listings
    for size in ds.sizes:
        for split in Split:
            images, labels = ds.load(split, size, None)
            n = ds.n_samples[split.value]
            assert images.dtype == np.uint8 and images.shape == (n, size, size) + ((3,) if channels == 3 else ())
            assert labels.shape == (n, k if task is Task.MULTILABEL else 1) and labels.dtype == np.int64
            if task is Task.MULTILABEL:
                assert set(np.unique(labels)) == {0, 1} and (labels.min(0) == 0).all() and (labels.max(0) == 1).all()
            else:
                assert set(np.unique(labels)) == set(range(k))


def test_synthetic_is_deterministic() -> None:
    ds = DATASETS.get("synthetic_ordinal")
    first, fp = ds.load("val", 28)[0], ds.fingerprint(28, None)
    kept = first.copy()
    first[:] = 0  # a caller's in-place edit does not leak into the next load
    np.testing.assert_array_equal(ds.load("val", 28)[0], kept)
    synthetic._generate.cache_clear()  # generated afresh: the same bytes
    np.testing.assert_array_equal(ds.load("val", 28)[0], kept)
    assert ds.fingerprint(28, None) == fp
    fps = {DATASETS.get(n).fingerprint(s, None) for n in SYNTHETIC for s in (28, 64)}
    assert len(fps) == 2 * len(SYNTHETIC)
    with pytest.raises(ValueError, match="sizes"):
        ds.load("val", 128)


def test_synthetic_binary_is_linearly_learnable() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    ds = DATASETS.get("synthetic_binary")
    (x, y), (xt, yt) = ds.load("train", 28), ds.load("test", 28)
    clf = LogisticRegression(max_iter=1000).fit(x.reshape(len(x), -1) / 255.0, y.ravel())
    assert roc_auc_score(yt.ravel(), clf.predict_proba(xt.reshape(len(xt), -1) / 255.0)[:, 1]) > 0.9
