"""Segmentation datasets (CHASE_DB1 and ISBI-2012 on the real files, DRIVE on a synthetic folder) and the pixel
metrics (hand-computed values on tiny masks). A missing real-data folder fails these tests, it never skips them."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from benchmarks.data import DATASETS, ChecksumError, DatasetNotFoundError, Split, Task
from benchmarks.data.seg import (
    DriveTestLabelsMissingWarning,
    SegmentationDataError,
    chase_fov,
    dataset_dir,
    drive_has_test_labels,
    load_samples,
)
from benchmarks.metrics.segmentation import isbi_metrics, pixel_auc, segmentation_metrics
from zoo.errors import UnknownNameError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _real(folder: str) -> Path:
    path = SHARED / folder
    if not path.is_dir():
        pytest.fail(f"{path} not found: these tests need the shared data folder ../shared/data/{folder}")
    return path


@pytest.fixture(scope="module")
def chase_dir() -> Path:
    return _real("chase_db1")


@pytest.fixture(scope="module")
def isbi_dir() -> Path:
    return _real("isbi2012_em_membrane")


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's data folders must not change where these tests look."""
    monkeypatch.delenv("MEDZOO_SEG_DATA_DIR", raising=False)
    monkeypatch.delenv("MEDZOO_DATA_DIR", raising=False)


# --- CHASE_DB1 --------------------------------------------------------------------------------------------------------

def test_chase_is_split_by_child_with_both_observers(chase_dir: Path) -> None:
    ds = DATASETS.get("chase_db1")
    assert ds.task is Task.SEGMENTATION and ds.n_channels == 3 and ds.num_classes == 2 and "CC BY 4.0" in ds.license
    subjects = {}
    for split in Split:
        samples = load_samples("chase_db1", split, chase_dir)
        assert len(samples) == ds.n_samples[split.value]
        subjects[split] = {s.subject for s in samples}
        assert {s.id for s in samples} == {f"Image_{c}{eye}" for c in subjects[split] for eye in "LR"}  # both eyes
        for s in samples:
            assert s.image.shape == (960, 999, 3) and s.image.dtype == np.uint8
            assert s.mask.dtype == bool and s.mask2 is not None and s.mask.shape == s.mask2.shape == s.fov.shape
            assert not s.image.flags.writeable and not s.mask.flags.writeable  # cached: shared, so read-only
            assert 0.04 < s.mask.mean() < 0.1 and 0.04 < s.mask2.mean() < 0.1
    assert subjects[Split.TRAIN] == {f"{i:02d}" for i in range(1, 9)}
    assert subjects[Split.VAL] == {"09", "10"} and subjects[Split.TEST] == {"11", "12", "13", "14"}
    assert not (subjects[Split.TRAIN] & subjects[Split.VAL] or subjects[Split.TRAIN] & subjects[Split.TEST]
                or subjects[Split.VAL] & subjects[Split.TEST])  # no child in two splits


def test_chase_fov_covers_the_fundus_disc(chase_dir: Path) -> None:
    for split in Split:
        for s in load_samples("chase_db1", split, chase_dir):
            fov = s.fov
            assert 0.6 < fov.mean() < 0.95, s.id
            assert not fov[[0, 0, -1, -1], [0, -1, 0, -1]].any() and fov[480, 500], s.id  # corners out, centre in
            assert (s.mask & ~fov).sum() < 0.01 * s.mask.sum(), s.id  # the vessels lie inside
            red = s.image[..., 0]
            assert red[~fov].mean() < 5 < 40 < red[fov].mean(), s.id  # dark surround, bright disc
    np.testing.assert_array_equal(chase_fov(np.asarray(s.image)), s.fov)
    with pytest.raises(ValueError, match="RGB"):
        chase_fov(s.image[..., 0])


def test_chase_spec_load_fingerprint_and_size(chase_dir: Path) -> None:
    ds = DATASETS.get("chase_db1")
    images, masks = ds.load("val", 960, chase_dir)
    assert images.shape == (4, 960, 999, 3) and images.dtype == np.uint8
    assert masks.shape == (4, 960, 999) and masks.dtype == np.uint8 and set(np.unique(masks)) == {0, 1}
    fp = ds.fingerprint(960, chase_dir)
    assert len(fp) == 32 and fp == ds.fingerprint(None, SHARED)  # root may be the folder holding chase_db1/
    with pytest.raises(ValueError, match="native resolution"):
        ds.load("val", 224, chase_dir)


def test_chase_second_observer_is_a_plausible_human_baseline(chase_dir: Path) -> None:
    test = load_samples("chase_db1", "test", chase_dir)
    first = np.stack([s.mask for s in test])
    second = np.stack([s.mask2 for s in test if s.mask2 is not None]).astype(np.float32)
    fov = np.stack([s.fov for s in test])
    inside = segmentation_metrics(second, first, fov)
    whole = segmentation_metrics(second, first)
    assert inside["acc"] > 0.9 and 0.7 < inside["f1"] < 0.85 and inside["specificity"] > 0.95
    assert 0.6 < inside["sensitivity"] < 0.95 and inside["auc"] == pytest.approx(
        (inside["sensitivity"] + inside["specificity"]) / 2)  # a hard 0/1 "probability": AUC = balanced accuracy
    assert whole["acc"] > inside["acc"] and whole["f1"] == pytest.approx(inside["f1"], abs=0.01)
    assert inside["n_pixels"] == fov.sum() and whole["n_pixels"] == first.size


def test_chase_md5sums_mismatch_and_official_flat_layout(chase_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "chase_db1"
    shutil.copytree(chase_dir, copy)
    for f in copy.rglob("*"):
        f.chmod(0o755 if f.is_dir() else 0o644)  # the shared copy is read-only
    with (copy / "images" / "Image_12R.jpg").open("ab") as f:
        f.write(b"\0")
    assert len(load_samples("chase_db1", "val", copy)) == 4  # only the files used are checked
    with pytest.raises(ChecksumError, match=r"md5 mismatch for .*Image_12R\.jpg.*MD5SUMS"):
        load_samples("chase_db1", "test", copy)
    with pytest.raises(ChecksumError):
        DATASETS.get("chase_db1").fingerprint(None, copy)

    flat = tmp_path / "CHASEDB1"  # CHASEDB1.zip unzipped: all 84 files side by side, no MD5SUMS
    flat.mkdir()
    for sub in ("images", "masks_1stHO", "masks_2ndHO"):
        for f in (chase_dir / sub).iterdir():
            shutil.copy(f, flat / f.name)
    a, b = load_samples("chase_db1", "val", flat), load_samples("chase_db1", "val", chase_dir)
    assert [s.id for s in a] == [s.id for s in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.mask2, y.mask2)
    ds = DATASETS.get("chase_db1")
    assert ds.fingerprint(None, flat) == ds.fingerprint(None, chase_dir)  # same files, either layout


# --- where the files are, and clear errors ----------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "expected", "url"), [
    ("chase_db1", "Image_01L.jpg", "researchdata.kingston.ac.uk/96"),
    ("isbi2012", "train-volume.tif", "brainiac2.mit.edu/isbi_challenge"),
    ("drive", "21_training.tif", "drive.grand-challenge.org"),
])
def test_missing_folder_names_path_files_and_download(name: str, expected: str, url: str, tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as e:
        load_samples(name, "train", tmp_path / "nowhere")
    msg = str(e.value)
    assert str(tmp_path / "nowhere") in msg and expected in msg and url in msg
    with pytest.raises(DatasetNotFoundError, match="MEDZOO_SEG_DATA_DIR"):  # no root and no environment: say so
        DATASETS.get(name).load("test", None, None)


def test_data_folder_from_the_environment(monkeypatch: pytest.MonkeyPatch, chase_dir: Path) -> None:
    monkeypatch.setenv("MEDZOO_SEG_DATA_DIR", str(SHARED))
    assert dataset_dir("chase_db1") == chase_dir and dataset_dir("isbi2012") == SHARED / "isbi2012_em_membrane"
    monkeypatch.delenv("MEDZOO_SEG_DATA_DIR")
    monkeypatch.setenv("MEDZOO_DATA_DIR", str(SHARED / "medmnist"))  # MedMNIST's folder: its siblings are found
    assert dataset_dir("chase_db1") == chase_dir


def test_unknown_or_classification_names_are_refused() -> None:
    with pytest.raises(UnknownNameError, match="chase_db1"):
        load_samples("chase", "train")
    with pytest.raises(SegmentationDataError, match="not a segmentation dataset"):
        load_samples("breastmnist", "train")


# --- ISBI-2012 --------------------------------------------------------------------------------------------------------

def test_isbi_contiguous_blocks_membrane_positive(isbi_dir: Path) -> None:
    ds = DATASETS.get("isbi2012")
    assert ds.task is Task.SEGMENTATION and "non-commercial" in ds.license and ds.labels["1"] == "membrane"
    expect = {Split.TRAIN: range(0, 20), Split.VAL: range(20, 25), Split.TEST: range(25, 30)}
    for split, slices in expect.items():
        samples = load_samples("isbi2012", split, isbi_dir)
        assert [int(s.subject) for s in samples] == list(slices)
        for s in samples:
            assert s.image.shape == (512, 512) and s.image.dtype == np.uint8 and s.fov.all() and s.mask2 is None
            assert 0.1 < s.mask.mean() < 0.35  # membrane ≈ 22% of the pixels: the minority, 0 in the PNGs
    raw = np.asarray(Image.open(isbi_dir / "train" / "masks" / "25.png"))
    np.testing.assert_array_equal(load_samples("isbi2012", "test", isbi_dir)[0].mask, raw == 0)
    images, masks = ds.load("test", 512, isbi_dir)
    assert images.shape == masks.shape == (5, 512, 512) and masks.dtype == np.uint8
    assert len(ds.fingerprint(512, isbi_dir)) == 32


def test_isbi_challenge_tiff_volumes_read_like_the_pngs(isbi_dir: Path, tmp_path: Path) -> None:
    for name, sub in (("train-volume.tif", "images"), ("train-labels.tif", "masks")):
        pages = [Image.open(isbi_dir / "train" / sub / f"{i}.png") for i in range(30)]
        pages[0].save(tmp_path / name, save_all=True, append_images=pages[1:])
    a, b = load_samples("isbi2012", "val", tmp_path), load_samples("isbi2012", "val", isbi_dir)
    for x, y in zip(a, b, strict=True):
        assert x.id == y.id
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.mask, y.mask)


# --- DRIVE (synthetic folder in the official layout; the real data may not be redistributed) --------------------------

def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _vessels(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return (rng.random((h, w)) < 0.2).astype(np.uint8) * 255


def _fake_drive(root: Path, test_labels: bool = True, h: int = 12, w: int = 10) -> Path:
    """DRIVE's layout with random images and vessels; the FOV is the box [2, h-2) x [2, w-2)."""
    rng = np.random.default_rng(0)
    fov = np.zeros((h, w), np.uint8)
    fov[2:h - 2, 2:w - 2] = 255
    for n in range(1, 41):
        part, kind = ("training", "training") if n > 20 else ("test", "test")
        _save(root / part / "images" / f"{n:02d}_{kind}.tif", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        _save(root / part / "mask" / f"{n:02d}_{kind}_mask.gif", fov)
        if part == "training" or test_labels:
            _save(root / part / "1st_manual" / f"{n:02d}_manual1.gif", _vessels(rng, h, w))
        if part == "test" and test_labels:
            _save(root / part / "2nd_manual" / f"{n:02d}_manual2.gif", _vessels(rng, h, w))
    return root


def test_drive_official_layout(tmp_path: Path) -> None:
    root = _fake_drive(tmp_path / "DRIVE")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DriveTestLabelsMissingWarning)
        assert drive_has_test_labels(tmp_path)
        ids = {split: [int(s.subject) for s in load_samples("drive", split, root)] for split in Split}
        test = load_samples("drive", "test", root)
    assert ids[Split.TEST] == list(range(1, 21)) and ids[Split.VAL] == [35, 36]
    assert ids[Split.TRAIN] == [*range(21, 35), *range(37, 41)]
    s = test[0]
    assert s.id == "01_test" and s.image.shape == (12, 10, 3) and s.mask2 is not None
    np.testing.assert_array_equal(s.image, np.asarray(Image.open(root / "test" / "images" / "01_test.tif")))
    np.testing.assert_array_equal(s.mask, np.asarray(Image.open(root / "test" / "1st_manual" / "01_manual1.gif")
                                                     .convert("L")) == 255)
    assert s.fov.sum() == 48 and s.fov[2:10, 2:8].all()  # the official FOV mask, as written
    assert load_samples("drive", "train", root)[0].mask2 is None  # training images have one observer
    images, masks = DATASETS.get("drive").load("test", None, root)
    assert images.shape == (20, 12, 10, 3) and masks.shape == (20, 12, 10)
    fp = DATASETS.get("drive").fingerprint(None, root)
    _save(root / "test" / "images" / "07_test.tif", np.zeros((12, 10, 3), np.uint8))
    assert DATASETS.get("drive").fingerprint(None, root) != fp  # a changed file changes the fingerprint
    (root / "test" / "1st_manual" / "05_manual1.gif").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"incomplete: missing test/1st_manual/05_manual1\.gif"):
        load_samples("drive", "train", root)  # partial test labels are an error, not a silent fallback


def test_drive_without_test_labels_holds_out_training_images(tmp_path: Path) -> None:
    root = _fake_drive(tmp_path / "drive", test_labels=False)
    assert not drive_has_test_labels(root)
    with pytest.warns(DriveTestLabelsMissingWarning, match="37–40"):
        test = load_samples("drive", "test", root)
    assert [s.id for s in test] == ["37_training", "38_training", "39_training", "40_training"]
    with pytest.warns(DriveTestLabelsMissingWarning):
        assert [int(s.subject) for s in load_samples("drive", "val", root)] == [35, 36]
        assert [int(s.subject) for s in load_samples("drive", "train", root)] == list(range(21, 35))


def test_drive_mask_of_another_size_is_refused(tmp_path: Path) -> None:
    root = _fake_drive(tmp_path / "drive")
    _save(root / "training" / "mask" / "35_training_mask.gif", np.zeros((5, 5), np.uint8))
    with pytest.raises(SegmentationDataError, match="35_training.*FOV mask is 5x5"):
        load_samples("drive", "val", root)


# --- metrics ----------------------------------------------------------------------------------------------------------

TARGET = np.array([[1, 1, 0, 0],
                   [1, 0, 0, 0],
                   [0, 0, 0, 0],
                   [0, 0, 0, 0]], bool)
PROB = np.array([[.9, .4, .6, .1],
                 [.8, .1, .1, .1],
                 [.2, .1, .1, .1],
                 [.1, .1, .1, .1]])


def test_segmentation_metrics_by_hand() -> None:
    # at 0.5: TP (0,0),(1,0); FN (0,1); FP (0,2); TN the other 12
    m = segmentation_metrics(PROB, TARGET)
    assert m["acc"] == pytest.approx(14 / 16) and m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(12 / 13) and m["f1"] == m["dice"] == pytest.approx(4 / 6)
    assert m["iou"] == pytest.approx(2 / 4) and m["prevalence"] == pytest.approx(3 / 16) and m["n_pixels"] == 16
    # AUC: 3 positives x 13 negatives = 39 pairs; 0.9 and 0.8 beat all 13, 0.4 beats 12 (not 0.6) -> 38 / 39
    assert m["auc"] == pytest.approx(38 / 39)
    # batch of images: pooled, the same as one image
    assert segmentation_metrics(np.stack([PROB, PROB]), np.stack([TARGET, TARGET]))["auc"] == pytest.approx(38 / 39)


def test_fov_restricts_the_pixels_scored() -> None:
    fov = np.ones((4, 4), bool)
    fov[0, 2] = False  # drop the false positive
    m = segmentation_metrics(PROB, TARGET, fov)
    assert m["n_pixels"] == 15 and m["acc"] == pytest.approx(14 / 15) and m["specificity"] == 1.0
    assert m["f1"] == pytest.approx(4 / 5) and m["iou"] == pytest.approx(2 / 3) and m["auc"] == 1.0
    outside = np.zeros((4, 4), bool)
    outside[:2, :2] = True  # only (0,0),(0,1),(1,0) positive and (1,1) negative remain
    m = segmentation_metrics(PROB, TARGET, outside)
    assert m["n_pixels"] == 4 and m["sensitivity"] == pytest.approx(2 / 3) and m["specificity"] == 1.0
    assert m["auc"] == pytest.approx(1.0)  # 0.9, 0.4, 0.8 all above the negative's 0.1


def test_threshold_is_inclusive_ties_count_half_and_undefined_is_nan() -> None:
    t = np.array([[1, 0], [0, 0]], bool)
    p = np.array([[.5, .5], [0, 0]])
    m = segmentation_metrics(p, t)
    assert m["sensitivity"] == 1.0 and m["specificity"] == pytest.approx(2 / 3)  # 0.5 >= 0.5 is positive
    assert m["auc"] == pytest.approx((0.5 + 2) / 3)  # the tie with one negative counts half
    empty = segmentation_metrics(np.zeros((2, 2)), np.zeros((2, 2), bool))
    assert np.isnan(empty["sensitivity"]) and np.isnan(empty["f1"]) and np.isnan(empty["auc"]) and empty["acc"] == 1


def test_pixel_auc_equals_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(5000) < 0.1
    s = np.round(rng.random(5000) * 0.5 + 0.3 * y, 2)  # many ties
    assert pixel_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="logits"):
        segmentation_metrics(PROB * 4 - 2, TARGET)
    with pytest.raises(ValueError, match="0/255"):
        segmentation_metrics(PROB, TARGET.astype(np.uint8) * 255)
    with pytest.raises(ValueError, match="shape"):
        segmentation_metrics(PROB[:2], TARGET)
    with pytest.raises(ValueError, match="empty"):
        segmentation_metrics(PROB, TARGET, np.zeros((4, 4), bool))


def test_isbi_metrics_by_hand() -> None:
    membrane = np.zeros((4, 4), bool)
    membrane[:, 1] = True  # a vertical membrane: cells = column 0 (4 px) and columns 2-3 (8 px)
    none = isbi_metrics(np.zeros((4, 4)), membrane)  # predicts no membrane: one 16-px cell
    assert none["dice"] == 0 and none["iou"] == 0 and none["pixel_error"] == pytest.approx(4 / 16)
    # Rand on the 12 ground-truth cell pixels (membrane ignored): pairs in the same true cell 4*3 + 8*7 = 68, in the
    # same predicted cell 12*11 = 132, in both 68: error = 1 - 68 / ((68 + 132) / 2) = 0.32
    assert none["rand_error"] == pytest.approx(0.32)
    perfect = isbi_metrics(membrane.astype(float), membrane)
    assert perfect["dice"] == perfect["iou"] == 1 and perfect["pixel_error"] == 0 and perfect["rand_error"] == 0
    # 4-connectivity: a ring of membrane leaves five 1-px cells (the centre touches the corners only diagonally).
    # Predicting no membrane merges them into one cell: pairs together in truth 0, in prediction 5*4 = 20, in both 0:
    # error 1 (with 8-connectivity the truth would be one 5-px cell and the error 0)
    ring = np.zeros((3, 3), bool)
    ring[[0, 1, 1, 2], [1, 0, 2, 1]] = True
    assert isbi_metrics(np.zeros((3, 3)), ring)["rand_error"] == pytest.approx(1.0)
    two = isbi_metrics(np.stack([np.zeros((4, 4)), membrane.astype(float)]), np.stack([membrane, membrane]))
    assert two["rand_error"] == pytest.approx((0.32 + 0) / 2)  # the mean over slices
    assert two["pixel_error"] == pytest.approx(4 / 32)  # pooled over pixels
