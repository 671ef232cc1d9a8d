"""The segmentation harness: patches, sliding-window inference, trained-model files, the human baseline, and a
smoke run of the whole path (train a U-Net for a few steps on crops, score whole images, board, `medzoo predict`)
on the real ISBI-2012 slices and on a synthetic DRIVE folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import safetensors.numpy
import torch
from PIL import Image
from safetensors.torch import save_file
from test_segmentation_data import _fake_drive
from torch import nn

import zoo
from benchmarks import boards
from benchmarks.audit import rescore
from benchmarks.cells import run_cell
from benchmarks.cells.segmentation import Images, SegOutputs, human_baseline, score_pooled
from benchmarks.cells.train import apply_flips, draw_flips
from benchmarks.cli import main
from benchmarks.data import Split
from benchmarks.data.seg import load_samples
from benchmarks.results import ResultStore
from benchmarks.suites import SUITES, SegProtocol, Suite, _seg_grids
from zoo import MedzooError, TransferMode

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TINY = SegProtocol(epochs=2, batch_size=4, patches_per_epoch=16, val_patches=8, val_full_every=1, patch_size=64,
                   schedule="constant")  # an epoch budget: a time budget would stop early on a loaded machine
SEGSMOKE = Suite(name="segsmoke", version="1", description="A few U-Net steps on crops, for the tests.",
                 grids=_seg_grids(("unet2015_w32.random",), ("isbi2012",), TransferMode.SCRATCH, TINY))
if "segsmoke" not in SUITES:
    SUITES.add(SEGSMOKE)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDZOO_SEG_DATA_DIR", raising=False)
    monkeypatch.delenv("MEDZOO_DATA_DIR", raising=False)


class _Pointwise(nn.Module):
    """A per-pixel model: its sliding-window output must equal one whole-image forward exactly."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1)
        nn.init.normal_(self.conv.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
def test_sliding_window_averages_overlapping_windows_into_the_whole_image(overlap: float) -> None:
    net, x = _Pointwise(), torch.randn(3, 70, 45)  # not a multiple of the window; smaller than it in width
    prob = zoo.sliding_window(net, x, patch_size=32, overlap=overlap, batch_size=3)
    assert prob.shape == (70, 45)
    with torch.no_grad():
        expected = net(x[None])[0, 0].sigmoid()
    torch.testing.assert_close(prob, expected, atol=1e-6, rtol=1e-5)


def test_crops_and_flips_keep_image_and_mask_aligned() -> None:
    rng = np.random.default_rng(0)
    x = [torch.from_numpy(rng.normal(size=(2, h, w)).astype(np.float32)) for h, w in ((40, 50), (33, 64))]
    imgs = Images(x, [(t[0] > 0).float() for t in x])
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        xb, yb = imgs.crops(5, 32, gen)
        draw = draw_flips(gen)
        xb, yb = apply_flips(xb, draw, (2, 3)), apply_flips(yb, draw, (2, 3))
        assert xb.shape == (5, 2, 32, 32) and yb.shape == (5, 1, 32, 32)
        torch.testing.assert_close(yb, (xb[:, :1] > 0).float())
    with pytest.raises(MedzooError, match="larger than"):
        imgs.crops(1, 41, gen)


def test_trained_model_file_round_trips_and_foreign_files_are_refused(tmp_path: Path) -> None:
    net = zoo.create_model("unet2015_w32", num_classes=1, in_chans=1).eval()
    meta = {"arch": "unet2015_w32", "num_classes": 1, "in_chans": 1, "mean": [0.5], "std": [0.5], "patch_size": 64,
            "overlap": 0.25, "threshold": 0.5}
    sha = zoo.save_trained(tmp_path / "m.safetensors", net, meta)
    assert len(sha) == 64
    loaded, got = zoo.load_trained(tmp_path / "m.safetensors")
    assert got == meta
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))
    with pytest.raises(ValueError, match="lacks"):
        zoo.save_trained(tmp_path / "n.safetensors", net, {"arch": "unet2015_w32"})
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(MedzooError, match="no medzoo metadata"):
        zoo.load_trained(tmp_path / "foreign.safetensors")
    with pytest.raises(MedzooError, match="no trained model"):
        zoo.load_trained(tmp_path / "missing.safetensors")


def test_human_baseline_is_the_second_observer_scored_like_a_model() -> None:
    test = load_samples("chase_db1", Split.TEST, SHARED)
    human = human_baseline("chase_db1", test)
    assert human is not None and "auc" not in human and "whole_auc" not in human
    same = score_pooled(SegOutputs.of([s.mask2.astype(np.float64) for s in test], test, False))  # type: ignore
    assert {k: same[k] for k in human} == human
    assert 0.7 < human["f1"] < 0.9 and human["acc"] > 0.9  # two careful humans agree, not perfectly
    assert human_baseline("isbi2012", load_samples("isbi2012", Split.TEST, SHARED)) is None


def test_segmentation_smoke_run_board_and_predict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CI smoke test of the whole path on the real ISBI-2012 slices (a few steps: the numbers are not good)."""
    monkeypatch.setenv("MEDZOO_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    results, boards, preds = tmp_path / "results", tmp_path / "boards", tmp_path / "pred"
    args = ["--suite", "segsmoke", "--data-dir", str(SHARED), "--results-dir", str(results), "--out-dir", str(boards)]
    assert main(["run", *args]) == 0
    [r] = ResultStore(results).results("segsmoke")
    assert r.status == "ok" and r.data.n == {"train": 20, "val": 5, "test": 5}
    assert {"dice", "iou", "pixel_error", "rand_error", "auc"} <= set(r.test)
    assert 0 <= r.test["pixel_error"] <= 1 and 0 <= r.test["rand_error"] <= 1
    assert [p.id for p in r.metrics.per_image] == [f"slice_{i}" for i in range(25, 30)]
    assert r.training.epochs_run == 2 and all("val_full_auc" in h for h in r.training.history)
    assert r.data.second_observer is None and r.model.width == 32
    # lossless: the stored histograms and bit masks give back every stored metric, Rand error included, exactly
    assert r.outputs.lossless and rescore(r, ResultStore(results).outputs(r)).model_dump() == r.metrics.model_dump()
    ckpt = Path(r.model.checkpoint.path)
    assert ckpt.is_file() and ckpt.stat().st_size > 1e6 and ckpt.is_relative_to(tmp_path / "ckpt")
    md = (boards / "segsmoke.md").read_text()
    assert "## isbi2012" in md and "reported (paper)" in md and "0.0382" in md and "not comparable" in md
    row = pd.read_csv(boards / "segsmoke.csv").iloc[0]  # the CI over the 5 test slices brackets the pooled Dice
    assert row["dice_ci_low"] < row["dice_ci_high"] and row["dice_ci_low"] <= r.test["dice"] <= row["dice_ci_high"]
    assert f"{r.test['dice']:.4f} [{row['dice_ci_low']:.3f}, {row['dice_ci_high']:.3f}]" in md
    # the operating point chosen on the validation slices, applied to the test slices, from the stored histograms
    assert 0 <= row["val_t_min"] == row["val_t_max"] <= 1 and 0 <= row["f1_val_t_mean"] <= 1
    assert f"{row['f1_val_t_mean']:.4f} (t = {row['val_t_min']:.2f})" in md and "| 1 run |" in md
    assert main(["leaderboard", "--check", "--suite", "segsmoke", "--results-dir", str(results),
                 "--out-dir", str(boards)]) == 0
    image = SHARED / "isbi2012_em_membrane" / "train" / "images" / "25.png"
    truth = SHARED / "isbi2012_em_membrane" / "train" / "masks" / "25.png"
    assert main(["predict", str(ckpt), str(image), "--truth", str(truth), "--invert-truth", "--out", str(preds)]) == 0
    prob = np.asarray(Image.open(preds / "25_prob.png"))
    mask = np.asarray(Image.open(preds / "25_mask.png"))
    assert prob.shape == mask.shape == (512, 512) and set(np.unique(mask)) <= {0, 255}
    np.testing.assert_array_equal(mask == 255, prob >= 128)  # the mask is the thresholded probability map
    assert (preds / "25_panel.png").is_file()
    assert main(["predict", str(ckpt), str(image), "--truth", str(truth), str(truth), "--out", str(preds)]) == 2


def test_segmentation_cell_on_a_drive_layout_scores_inside_the_official_fov(tmp_path: Path) -> None:
    _fake_drive(tmp_path / "DRIVE", h=48, w=40)
    p = SegProtocol(epochs=1, batch_size=4, patches_per_epoch=8, val_patches=4, val_full_every=1, patch_size=32)
    [cell] = Suite("t", "1", "", _seg_grids(("unet2015_w32.random",), ("drive",), TransferMode.SCRATCH, p)).cells()
    r = run_cell(cell, data_dir=tmp_path)
    assert r.status == "ok" and r.data.n["test"] == 20
    fov_pixels = 20 * 44 * 36
    assert r.test["n_pixels"] == fov_pixels and r.data.second_observer["n_pixels"] == fov_pixels
    assert {"whole_auc", "whole_f1"} <= set(r.test) and r.model.checkpoint is None  # no store: nothing kept
    assert rescore(r, safetensors.numpy.load(r.blob)).model_dump() == r.metrics.model_dump()
    skipped = run_cell(cell, data_dir=tmp_path / "nothing-here")
    assert skipped.status == "skipped" and "DRIVE" in skipped.reason and "may not be redistributed" in skipped.reason


def test_segmentation_cells_refuse_frozen_modes_and_wrong_patch_sizes() -> None:
    bad_mode = Suite("t", "1", "", _seg_grids(("unet2015_w32.random",), ("isbi2012",), TransferMode.FEATURES, TINY))
    with pytest.raises(MedzooError, match="scratch or finetune"):
        run_cell(bad_mode.cells()[0], data_dir=SHARED)
    odd = SegProtocol(patch_size=72)
    bad_size = Suite("t", "1", "", _seg_grids(("unet_resnet18.random",), ("isbi2012",), TransferMode.SCRATCH, odd))
    with pytest.raises(MedzooError, match="divisible by 32"):
        run_cell(bad_size.cells()[0], data_dir=SHARED)


def test_segmentation_suite_is_versioned_data() -> None:
    suite = SUITES.get("segmentation")
    cells = suite.cells()
    assert {c.dataset for c in cells} == {"chase_db1", "isbi2012", "drive"}
    assert all(isinstance(c.protocol, SegProtocol) and c.input_size == c.protocol.patch_size for c in cells)
    plain = [c for c in cells if c.arch == "unet2015_w32"]
    assert {c.dataset for c in plain} == {"chase_db1", "isbi2012", "drive"}
    assert all({c.seed for c in plain if c.dataset == d} == {0, 1, 2} for d in ("chase_db1", "isbi2012"))
    assert {c.seed for c in cells if c.arch != "unet2015_w32"} == {0}  # the other variants: one run each
    others = {c.arch for c in cells if c.arch != "unet2015_w32"}
    assert len(others) >= 2 and all({"chase_db1", "isbi2012"} <= {c.dataset for c in cells if c.arch == a}
                                    for a in others)
    assert all(json.dumps(c.config()) for c in cells) and len({c.key for c in cells}) == len(cells)
    assert boards.board_of(suite) is boards.segmentation and suite.board == "segmentation"
    assert boards.board_of(SUITES.get("quick")) is boards.classification


def test_an_interrupted_segmentation_cell_resumes_to_the_same_result(tmp_path: Path) -> None:
    _fake_drive(tmp_path / "DRIVE", h=48, w=40)
    p = SegProtocol(epochs=3, batch_size=4, patches_per_epoch=8, val_patches=4, val_full_every=2, patch_size=32)
    [cell] = Suite("t", "1", "", _seg_grids(("unet2015_w32.random",), ("drive",), TransferMode.SCRATCH, p)).cells()
    whole = run_cell(cell, data_dir=tmp_path, store=ResultStore(tmp_path / "a", tmp_path / "ca"))

    def stop_in_epoch_2(kind: str, completed: int, total: int, text: str) -> None:
        if kind == "batch" and text.startswith("epoch 2"):
            raise KeyboardInterrupt

    store = ResultStore(tmp_path / "b", tmp_path / "cb")
    with pytest.raises(KeyboardInterrupt):
        run_cell(cell, data_dir=tmp_path, store=store, report=stop_in_epoch_2)
    assert store.checkpoint_path(cell).is_file()
    resumed = run_cell(cell, data_dir=tmp_path, store=store)
    assert resumed.training.resumed_from_epoch == 1
    assert resumed.training.history == whole.training.history
    assert resumed.metrics == whole.metrics


def test_histogram_scores_equal_the_pixel_scores_of_the_quantised_probabilities() -> None:
    """The compact outputs lose nothing the metrics need: counts of uint16 levels give scikit-learn's AUC of the
    levels and the same confusion matrix as thresholding them."""
    from benchmarks.metrics.segmentation import (
        LEVELS,
        dense_histograms,
        histogram_metrics,
        image_histograms,
        quantise,
        segmentation_metrics,
        sparse_histograms,
    )

    rng = np.random.default_rng(0)
    truth = rng.random((3, 40, 50)) < 0.2
    prob = np.clip(truth * 0.3 + rng.random(truth.shape) * 0.7, 0, 1)
    fov = np.zeros((40, 50), bool)
    fov[5:35, 5:45] = True
    q = quantise(prob)
    hists = np.stack([image_histograms(qi, ti, fov) for qi, ti in zip(q, truth, strict=True)])
    assert hists.sum() == truth.size and hists[:, 1].sum() == 3 * fov.sum()
    np.testing.assert_array_equal(dense_histograms(*sparse_histograms(hists).values()), hists)
    ours = histogram_metrics(hists[:, 1].sum(0))
    ref = segmentation_metrics(q / LEVELS, truth, fov)
    assert ours["auc"] == pytest.approx(ref["auc"], abs=1e-12)
    assert {k: v for k, v in ours.items() if k != "auc"} == {k: v for k, v in ref.items() if k != "auc"}
