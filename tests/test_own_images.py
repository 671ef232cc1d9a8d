"""A user's own images (issue 18): the reader (16-bit windowing, DICOM, pad/squash), the class-folder layout, CSVs
with multi-label labels or their own split, the task rule, and one clear error for each kind of bad input."""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from test_weights import _hub_cache

from benchmarks.cells import run_cell
from benchmarks.cli import main
from benchmarks.data import DATASETS, Split, Task
from benchmarks.data.folder import FolderDatasetError, folder_dataset
from benchmarks.data.images import WINDOW_PERCENTILES, ImageReadError, fit, read_image, window
from benchmarks.results import ResultStore
from benchmarks.runner import select_cells
from benchmarks.suites import images_suite
from zoo import trained_meta


def _png(path: Path, value: int, side: int = 12, rgb: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([value, zlib.crc32(path.as_posix().encode())])  # distinct files: distinct noise
    shape = (side, side, 3) if rgb else (side, side)
    Image.fromarray(np.clip(value + rng.integers(-3, 4, shape), 0, 255).astype(np.uint8)).save(path)


def _classes(root: Path, counts: dict[str, int]) -> Path:
    for ci, (cls, n) in enumerate(sorted(counts.items())):
        for i in range(n):
            _png(root / cls / f"{i}.png", 30 + 60 * ci + i % 3)
    return root


def _csv(root: Path, rows: list[str], header: str = "path,label,patient_id,split") -> Path:
    for r in rows:
        p = root / r.split(",")[0]
        if not p.exists():
            _png(p, 40 + 7 * len(list(root.rglob("*.png"))))
    csv = root / "labels.csv"
    csv.write_text("\n".join([header, *rows]) + "\n")
    return csv


# --- the reader ------------------------------------------------------------------------------------------------------

def test_16_bit_images_are_windowed_by_the_percentile_rule_not_divided(tmp_path: Path) -> None:
    """A 12-bit-in-16 radiograph (values 1000..1400) with one hot pixel: /257 gave ~4..5 grey levels; the window
    spreads the body over 0..255 and says how."""
    values = np.linspace(1000, 1400, 64 * 64).reshape(64, 64).astype(np.uint16)
    values[0, 0] = 65535
    Image.fromarray(values).save(tmp_path / "x.png")
    px = read_image(tmp_path / "x.png")
    lo, hi = np.percentile(values.astype(np.float64), WINDOW_PERCENTILES)
    np.testing.assert_array_equal(px.array, window(values, lo, hi))
    assert px.array.dtype == np.uint8 and px.array.min() == 0 and px.array.max() == 255
    assert len(np.unique(px.array)) > 200 and px.how.startswith("window p0.5-p99.5")


def test_tiff_16_bit_jpeg_and_rgb_are_read_through_pillow(tmp_path: Path) -> None:
    values = (np.arange(32 * 32).reshape(32, 32) * 40).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "x.tif")
    tif = read_image(tmp_path / "x.tif")
    lo, hi = np.percentile(values.astype(np.float64), WINDOW_PERCENTILES)
    np.testing.assert_array_equal(tif.array, window(values, lo, hi))
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "x.jpg", quality=95)
    jpg = read_image(tmp_path / "x.jpg")
    assert jpg.array.shape == (16, 16, 3) and jpg.how == "8-bit" and abs(int(jpg.array[8, 8, 0]) - 200) < 5


def _dicom(tmp_path: Path, name: str, **fields: object) -> Path:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for k, v in fields.items():
        if v is not None:
            setattr(ds, k, v)
        elif k in ds:
            delattr(ds, k)
    out = tmp_path / name
    ds.save_as(out)
    return out


def test_dicom_applies_its_rescale_and_window(tmp_path: Path) -> None:
    raw = pydicom.dcmread(get_testdata_file("CT_small.dcm")).pixel_array.astype(np.float64)
    path = _dicom(tmp_path, "ct.dcm", RescaleSlope=2, RescaleIntercept=-1024, WindowCenter=40, WindowWidth=400)
    px = read_image(path)
    np.testing.assert_array_equal(px.array, window(raw * 2 - 1024, 40 - 200, 40 + 200))  # HU, soft-tissue window
    assert px.how == "DICOM window C 40 / W 400"
    no_window = read_image(_dicom(tmp_path, "ct2", RescaleSlope=1, RescaleIntercept=0, WindowCenter=None,
                                  WindowWidth=None))  # no suffix: found by the DICM preamble
    lo, hi = np.percentile(raw, WINDOW_PERCENTILES)
    np.testing.assert_array_equal(no_window.array, window(raw, lo, hi))
    assert no_window.how.startswith("DICOM, window p0.5-p99.5")
    inverted = read_image(_dicom(tmp_path, "mono1.dcm", WindowCenter=None, WindowWidth=None,
                                 PhotometricInterpretation="MONOCHROME1"))
    np.testing.assert_array_equal(inverted.array, 255 - no_window.array)


def test_colour_dicom_keeps_its_colours() -> None:
    """pydicom already converts YBR JPEG pixels to RGB: a second conversion turned this red square green."""
    for name in ("SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_dcmtk_+eb+cr.dcm"):
        px = read_image(Path(get_testdata_file(name)))
        assert px.array.shape == (100, 100, 3) and px.array[0, 0, 0] > 250 and px.array[0, 0, 1:].max() < 5, name


def test_unreadable_dicom_names_the_file_and_the_fix(tmp_path: Path) -> None:
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"garbage")
    with pytest.raises(ImageReadError, match=r"broken\.dcm is not a readable DICOM.*pylibjpeg.*remove it"):
        read_image(bad)


def test_pad_keeps_the_aspect_squash_does_not() -> None:
    wide = np.full((10, 20), 200, np.uint8)
    padded = fit(wide, 20, "pad")
    assert padded.shape == (20, 20) and (padded[:5] == 0).all() and (padded[15:] == 0).all()
    assert (padded[5:15] == 200).all()
    assert (fit(wide, 20, "squash") == 200).all()
    with pytest.raises(ValueError, match="pad, squash"):
        fit(wide, 20, "crop")  # type: ignore[arg-type]


# --- layouts and tasks -------------------------------------------------------------------------------------------------

def test_class_subfolders_are_the_classes(tmp_path: Path) -> None:
    ds = folder_dataset(_classes(tmp_path / "xray", {"abdomen": 15, "chest": 15}), seed=1)
    assert ds.name == "xray" and ds.task is Task.BINARY and dict(ds.labels) == {"0": "abdomen", "1": "chest"}
    assert sum(ds.n_samples.values()) == 30 and all(ds.n_samples[s.value] > 0 for s in Split)
    images, labels = ds.load("test", 12)
    np.testing.assert_allclose(images.reshape(len(images), -1).mean(1), 31 + 60 * labels[:, 0], atol=3)
    assert "8-bit: 30" in ds.reading and "resize pad to 12 px" in ds.reading and "seed 1" in ds.reading
    (tmp_path / "xray" / "chest" / "notes.txt").write_text("scanner B")  # passed over, but said
    assert "ignored (not image files): .txt 1" in folder_dataset(tmp_path / "xray").reading


def test_multilabel_from_pipes_and_ordinal_only_when_asked(tmp_path: Path) -> None:
    labels = ["effusion|mass", "mass", "", "effusion", "effusion|mass", "mass", "effusion", ""] * 4
    csv = _csv(tmp_path, [f"i{i}.png,{lab}" for i, lab in enumerate(labels)], header="path,label")
    ds = folder_dataset(csv, val_fraction=0.25, test_fraction=0.25)
    assert ds.task is Task.MULTILABEL and dict(ds.labels) == {"0": "effusion", "1": "mass"}
    y = np.concatenate([ds.load(s, 12)[1] for s in Split])
    assert y.shape == (32, 2) and y.sum() == 32 and (y.sum(1) == 0).sum() == 8
    grades = _csv(tmp_path / "g", [f"g{i}.png,{i % 3}" for i in range(30)], header="path,label")
    assert folder_dataset(grades).task is Task.MULTICLASS  # never guessed
    assert folder_dataset(grades, task="ordinal").task is Task.ORDINAL
    with pytest.raises(FolderDatasetError, match="3 classes.*multiclass task, not binary"):
        folder_dataset(grades, task="binary")


def test_multilabel_integer_labels_are_ordered_as_numbers(tmp_path: Path) -> None:
    labels = ["0|10", "2", "1|2", "10", "0", "1", "2|10", "0|1"] * 4
    ds = folder_dataset(_csv(tmp_path, [f"i{i}.png,{lab}" for i, lab in enumerate(labels)], header="path,label"),
                        val_fraction=0.25, test_fraction=0.25)
    assert dict(ds.labels) == {"0": "0", "1": "1", "2": "2", "3": "10"}  # column k is label k, 10 last
    assert int(np.concatenate([ds.load(s, 12)[1] for s in Split])[:, 3].sum()) == 12


def test_a_given_split_is_used_and_recorded(tmp_path: Path) -> None:
    rows = [f"{s}{i}.png,{'ab'[i % 2]},p{s}{i // 2},{s}" for s in ("train", "val", "test") for i in range(6)]
    ds = folder_dataset(_csv(tmp_path, rows))
    assert ds.n_samples == {"train": 6, "val": 6, "test": 6} and "split: the CSV's split column" in ds.reading


def test_split_folders_as_tutorials_ship_them(tmp_path: Path) -> None:
    """train/ and val/ only (the chest/abdomen tutorial's layout): val/ is the test set, validation comes from
    train/; with a test/ folder every split is as given."""
    root = tmp_path / "tutorial"
    _classes(root / "TRAIN", {"abd": 16, "chest": 16})
    _classes(root / "VAL", {"abd": 5, "chest": 5})
    _png(root / "TEST" / "chest2.png", 90)  # the tutorial's TEST/: loose images to predict, no labels
    ds = folder_dataset(root, val_fraction=0.25)
    assert ds.n_samples["test"] == 10 and ds.n_samples["train"] + ds.n_samples["val"] == 32 and ds.n_samples["val"]
    assert "split folders; val drawn from train" in ds.reading
    _classes(root / "TEST", {"abd": 3, "chest": 3})
    assert folder_dataset(root).n_samples == {"train": 32, "val": 10, "test": 6}


# --- errors: each names the problem and the fix -----------------------------------------------------------------------

def test_an_unknown_column_is_refused_not_ignored(tmp_path: Path) -> None:
    """A misspelt patient column, ignored, would let one patient's images into two splits."""
    rows = [f"i{i}.png,{'ab'[i % 2]},p{i // 4}" for i in range(20)]
    with pytest.raises(FolderDatasetError, match=r"unknown column 'patient' \(did you mean 'patient_id'\?\)"):
        folder_dataset(_csv(tmp_path, rows, header="path,label,patient"))


def test_a_given_split_without_a_class_and_stray_split_folders(tmp_path: Path) -> None:
    rows = [f"{s}{i}.png,{'ab'[i % 2] if s != 'test' else 'a'},{s}" for s in ("train", "val", "test") for i in range(6)]
    with pytest.raises(FolderDatasetError, match=r"split 'test' has no image of class 'b'"):
        folder_dataset(_csv(tmp_path, rows, header="path,label,split"))
    root = tmp_path / "tree"
    _classes(root / "train", {"a": 6, "b": 6})
    _classes(root / "valid", {"a": 2, "b": 2})
    with pytest.raises(FolderDatasetError, match=r"a train/ folder and valid/: split folders are named train/, val/"):
        folder_dataset(root)
    _png(tmp_path / "loose" / "train" / "x.png", 50)
    with pytest.raises(FolderDatasetError, match=r"train holds no images in class subfolders"):
        folder_dataset(tmp_path / "loose")


def test_empty_folder_and_one_class(tmp_path: Path) -> None:
    (tmp_path / "empty" / "chest").mkdir(parents=True)
    with pytest.raises(FolderDatasetError, match=r"holds no images in class subfolders.*<class>/<image>\.png"):
        folder_dataset(tmp_path / "empty")
    with pytest.raises(FolderDatasetError, match=r"one class \('chest'\).*add images of another class"):
        folder_dataset(_classes(tmp_path / "one", {"chest": 8}))


def test_every_unreadable_image_is_listed(tmp_path: Path) -> None:
    root = _classes(tmp_path / "x", {"a": 10, "b": 10})
    (root / "a" / "3.png").write_bytes(b"not a png")
    (root / "b" / "7.png").write_bytes(b"")
    with pytest.raises(FolderDatasetError, match=r"(?s)2 of the 20 images.*a/3\.png.*b/7\.png.*none is skipped"):
        folder_dataset(root)


def test_a_label_on_one_image_is_a_probable_typo(tmp_path: Path) -> None:
    rows = [f"i{i}.png,pneumonia" for i in range(10)] + [f"j{i}.png,normal" for i in range(10)] + ["k.png,pneumonai"]
    with pytest.raises(FolderDatasetError, match=r"'pneumonai' is on one image only \(line 22\).*Did you mean "
                                                 r"'pneumonia'"):
        folder_dataset(_csv(tmp_path, rows, header="path,label"))


def test_a_patient_in_two_given_splits(tmp_path: Path) -> None:
    rows = [f"{s}{i}.png,{'ab'[i % 2]},p{s}{i},{s}" for s in ("train", "val", "test") for i in range(4)]
    rows[-1] = "test3.png,b,ptrain1,test"  # patient ptrain1 is in train already
    with pytest.raises(FolderDatasetError, match=r"same patient is in split 'train' \(line 3: train1\.png\) and in "
                                                 r"split 'test' \(line 13: test3\.png\)"):
        folder_dataset(_csv(tmp_path, rows))


def test_the_same_image_in_two_given_splits_and_kept_together_by_the_made_split(tmp_path: Path) -> None:
    rows = [f"{s}{i}.png,{'ab'[i % 2]},p{s}{i},{s}" for s in ("train", "val", "test") for i in range(4)]
    csv = _csv(tmp_path, rows)
    shutil.copy(tmp_path / "train0.png", tmp_path / "test2.png")  # the same bytes under another name and patient
    with pytest.raises(FolderDatasetError, match=r"same image \(same file content\) is in split 'train'.*test2\.png"):
        folder_dataset(csv)
    root = _classes(tmp_path / "dups", {"a": 12, "b": 12})
    for i in range(4):  # four copies of one image: whatever the seed, they land in one split
        shutil.copy(root / "a" / "0.png", root / "a" / f"copy{i}.png")
    for seed in range(5):
        ds = folder_dataset(root, seed=seed)
        held = [s for s in Split if (ds.load(s, 12)[0] == np.asarray(Image.open(root / "a" / "0.png"))).all((1, 2)).any()]
        assert len(held) == 1


# --- `medzoo run --images`: the same numbers as the npz cells ------------------------------------------------------

def _breast_as_pngs(root: Path, data_dir: Path) -> Path:
    """BreastMNIST written out as PNG files, with a CSV of the official split in the npz's order."""
    rows = []
    for split in Split:
        images, labels = DATASETS.get("breastmnist").load(split, 28, data_dir)
        for i, (img, lab) in enumerate(zip(images, labels[:, 0], strict=True)):
            path = root / split.value / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(path)
            rows.append(f"{split.value}/{i}.png,{lab},{split.value}")
    return _csv(root, rows, header="path,label,split")


def test_breastmnist_as_png_files_scores_exactly_as_the_npz(tmp_path: Path, medmnist_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDZOO_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    monkeypatch.setattr(DATASETS, "_entries", dict(DATASETS._entries))  # the run registers the user's dataset
    csv = _breast_as_pngs(tmp_path / "breast", medmnist_dir)
    base = ["run", "--images", str(csv), "--models", "resnet18_28.random", "--modes", "features", "linear_probe",
            "--sizes", "28", "--precision", "fp32", "--no-feature-cache", "--results-dir", str(tmp_path / "res"),
            "--out-dir", str(tmp_path / "board")]
    assert main(base) == 2  # the official split has one image in train and test (pixel-identical): refused ...
    assert main([*base, "--allow-duplicates"]) == 0  # ... unless kept as published, which is recorded
    ours = {r.cell.mode: r for r in ResultStore(tmp_path / "res").results()}
    assert set(ours) == {"features", "linear_probe"} and all(r.status == "ok" for r in ours.values())
    assert all("8-bit: 780" in r.data.reading and "1 image(s) also in another split" in r.data.reading
               for r in ours.values())
    [dataset] = {r.cell.dataset for r in ours.values()}
    suite = images_suite("breastmnist", 28, ("resnet18_28.random",), ("features", "linear_probe"), (28,), (0,))
    for cell in select_cells(suite, precision="fp32"):
        npz = run_cell(cell, data_dir=medmnist_dir)
        assert ours[cell.mode.value].test["auc"] == pytest.approx(npz.test["auc"], abs=1e-6), cell.mode
        assert ours[cell.mode.value].data.n == npz.data.n
    assert dataset.startswith("labels-") and (tmp_path / "board" / f"images-{dataset}.md").is_file()


def test_images_run_refuses_suite_options_and_bad_names(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DATASETS, "_entries", dict(DATASETS._entries))
    root = _classes(tmp_path / "x", {"a": 10, "b": 10})
    assert main(["run", "--images", str(root), "--suite", "quick"]) == 2
    assert "leave out --suite, --datasets and --data-dir" in capsys.readouterr().err
    assert main(["run", "--images", str(root), "--models", "resnt18"]) == 2
    assert "Did you mean" in capsys.readouterr().err
    assert main(["run", "--task", "ordinal"]) == 2
    assert "go with --images" in capsys.readouterr().err
    assert main(["run", "--images", str(tmp_path / "nope")]) == 2
    assert "nope not found" in capsys.readouterr().err


def test_predict_with_a_kept_classifier_gives_its_stored_test_probabilities(offline_env: Path, medmnist_dir: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The kept model file, the folder `medzoo export` makes of it and that folder from a Hub cache all label the
    test images with the probabilities the run stored."""
    from huggingface_hub import constants

    tmp_path = offline_env
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("MEDZOO_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    monkeypatch.setattr(DATASETS, "_entries", dict(DATASETS._entries))
    root = tmp_path / "breast"
    csv = _breast_as_pngs(root, medmnist_dir)
    assert main(["run", "--images", str(csv), "--allow-duplicates", "--models", "resnet18_28.random", "--modes",
                 "scratch", "--epochs", "2", "--sizes", "28", "--precision", "fp32", "--save-checkpoints",
                 "--results-dir", str(tmp_path / "res"), "--out-dir", str(tmp_path / "board")]) == 0
    store = ResultStore(tmp_path / "res")
    [r] = list(store.results())
    pngs = [str(root / "test" / f"{i}.png") for i in range(r.data.n["test"])]
    assert main(["predict", r.model.checkpoint.path, *pngs, "--out", str(tmp_path / "pred"), "--format", "plain"]) == 0
    pred = pd.read_csv(tmp_path / "pred" / "predictions.csv")
    _, stored = store.scores(r, "test")
    assert list(pred.columns) == ["path", "predicted", "p_0", "p_1"] and list(pred["path"]) == pngs
    np.testing.assert_allclose(pred["p_1"].to_numpy(), stored.reshape(len(pngs), -1)[:, -1], atol=1e-6)
    threshold = trained_meta(r.model.checkpoint.path)["threshold"]
    assert 0 < threshold < 1 and (pred["predicted"] == (pred["p_1"] >= threshold).astype(int)).all()
    assert main(["predict", r.model.checkpoint.path, *pngs[:5], "--threshold", "0", "--out", str(tmp_path / "t0")]) == 0
    assert (pd.read_csv(tmp_path / "t0" / "predictions.csv")["predicted"] == 1).all()  # --threshold is honoured
    assert main(["export", r.model.checkpoint.path, "--out", str(tmp_path / "exported"), "--results-dir",
                 str(tmp_path / "res")]) == 0
    _hub_cache(tmp_path / "hf", "medzoo-test/breast", {p.name: p.read_bytes() for p in (tmp_path / "exported").iterdir()})
    for model in (str(tmp_path / "exported"), "hf-hub:medzoo-test/breast"):
        assert main(["predict", model, *pngs, "--out", str(tmp_path / "pred2"), "--format", "plain"]) == 0
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "pred2" / "predictions.csv"), pred)
