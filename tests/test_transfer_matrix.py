"""The transfer matrix: source cells keep their models, transfer cells start from them (channels adapted, sha256
checked), baselines are shared, the board and heatmap come from the store; kept models export to Hub-style folders
that load back offline (and through plain timm for a timm-native architecture); `medzoo push` uploads them."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import timm
import torch
from hub_standin import Hub
from huggingface_hub import ModelCard
from test_weights import _hub_cache

import zoo
from benchmarks import boards
from benchmarks.boards import transfer_matrix
from benchmarks.cells import run_cell
from benchmarks.cells.classification import kept_model
from benchmarks.cells.feature_cache import FeatureCache
from benchmarks.cells.prep import SplitData, train_subset
from benchmarks.cli import main
from benchmarks.data import Task
from benchmarks.export import CARD_LICENSES, model_card, push
from benchmarks.results import ResultStore
from benchmarks.suites import SUITES, Grid, Policy, Protocol, Suite, TransferGrid, select
from zoo import HashMismatchError, MedzooError, TransferMode

TINY = Protocol(epochs=1, batch_size=16, optimizer="adam", lr=1e-3, schedule="constant", train_subset=40)
MATRIX = Suite(name="tm-test", version="1", description="A tiny transfer matrix on synthetic data, for the tests.",
               grids=(TransferGrid(arch="resnet18_28", datasets=("synthetic_binary", "synthetic_rgb"), seeds=(0, 1),
                                   protocol=TINY, source_protocol=replace(TINY, train_subset=None),
                                   scratch_epochs=(1, 2)),))
TIMM_NATIVE = Suite(name="tm-test-timm", version="1", description="A timm-native model to export, for the tests.",
                    grids=(Grid(models=("tf_efficientnet_lite0.random",), datasets=("synthetic_rgb",),
                                modes=(TransferMode.SCRATCH,), policy=Policy.RESIZE_BICUBIC, input_size=32,
                                protocol=replace(TINY, train_subset=None)),))
for _suite in (MATRIX, TIMM_NATIVE):
    if _suite.name not in SUITES:
        SUITES.add(_suite)


@pytest.fixture(scope="module")
def matrix_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ResultStore]]:
    """`medzoo run` of the tiny matrix with --save-checkpoints, into a private store and checkpoint folder."""
    tmp = tmp_path_factory.mktemp("matrix")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDZOO_CHECKPOINT_DIR", str(tmp / "ckpt"))
        for suite in (MATRIX, TIMM_NATIVE):
            assert main(["run", "--suite", suite.name, "--results-dir", str(tmp / "results"), "--out-dir",
                         str(tmp / "lb"), "--save-checkpoints"]) == 0
        yield tmp, ResultStore(tmp / "results")


def test_cells_sources_first_diagonal_left_out_and_shared_baselines() -> None:
    cells = MATRIX.cells()
    grid = MATRIX.grids[0]
    assert isinstance(grid, TransferGrid)
    sources = grid.sources(MATRIX)
    assert [c.key for c in cells[:4]] == [c.key for c in sources.values()]
    assert [(c.dataset, c.seed) for c in sources.values()] == list(sources)  # one source per dataset and seed
    transfers = [c for c in cells if c.init_from]
    assert all(c.tag != c.dataset for c in transfers)  # no diagonal
    assert Counter((c.dataset, c.mode.value) for c in transfers) == {
        ("synthetic_binary", "features"): 2, ("synthetic_binary", "finetune"): 2,
        ("synthetic_rgb", "features"): 2, ("synthetic_rgb", "finetune"): 2}
    assert all(c.init_from == sources[c.tag, c.seed].key for c in transfers)  # target seed s ← source seed s
    scratch = Counter((c.dataset, c.seed) for c in cells if c.mode is TransferMode.SCRATCH and c.protocol.train_subset)
    assert set(scratch.values()) == {2}  # each target and seed from scratch at both budgets
    assert len({c.key for c in cells}) == len(cells)
    # cells that start from no other cell and train on the whole split keep the keys they had before the matrix
    plain = Suite("k", "1", "", (Grid(models=("resnet18_28.random",), datasets=("synthetic_binary",), modes=(
        TransferMode.SCRATCH,)),)).cells()[0]
    assert "init_from" not in plain.config() and "train_subset" not in plain.config()["protocol"]


def test_select_brings_sources_and_overrides_follow_them() -> None:
    sources = MATRIX.grids[0].sources(MATRIX)  # type: ignore[union-attr]
    picked = select(MATRIX, datasets=["synthetic_rgb"], modes=["finetune"])
    assert sources["synthetic_binary", 0].key in {c.key for c in picked}  # the source runs too, though not a target
    longer = select(MATRIX, datasets=["synthetic_rgb"], modes=["finetune"], epochs=2)
    keys = {c.key: c for c in longer}
    for c in longer:
        if c.init_from:
            assert c.init_from in keys and keys[c.init_from].protocol.epochs == 2


def test_chosen_seeds_start_from_their_own_seeds_sources() -> None:
    """`--seeds 1` on the matrix runs seed-1 targets from seed-1 sources: never seed 1 from another seed's source."""
    picked = select(MATRIX, seeds=[1])
    keys = {c.key: c for c in picked}
    assert {c.seed for c in picked} == {1}
    assert all(keys[c.init_from].seed == c.seed for c in picked if c.init_from)
    every = {c.key for c in MATRIX.cells()}
    assert {c.key for c in select(MATRIX, seeds=[0])} <= every  # a suite seed gives the suite's own cells
    assert len(picked) == len(select(MATRIX, seeds=[0]))


def test_train_subset_is_stratified_fixed_and_leaves_small_splits_alone() -> None:
    y = np.array([0] * 80 + [1] * 20).reshape(-1, 1)
    data = SplitData(np.arange(100, dtype=np.uint8).reshape(100, 1, 1), y)
    a, b = train_subset(data, 50, Task.BINARY), train_subset(data, 50, Task.BINARY)
    assert len(a.y) == 50 and np.array_equal(a.x, b.x) and int(a.y.sum()) == 10  # 20% positive, as the whole split
    assert train_subset(data, 200, Task.BINARY) is data
    with pytest.raises(ValueError, match="train_subset"):
        Protocol(train_subset=1)


def test_a_train_subset_has_its_own_feature_cache_entries(tmp_path: Path) -> None:
    """The subset's features never come from (or go to) the whole split's entry: the rows would not match."""
    cache = FeatureCache(tmp_path / "features")
    [full] = Suite("fs", "1", "", (Grid(models=("resnet18_28.random",), datasets=("synthetic_binary",),
                                        modes=(TransferMode.FEATURES,)),)).cells()
    subset = replace(full, protocol=replace(full.protocol, train_subset=40))
    assert run_cell(full, cache=cache).data.n["train"] == 64
    again = run_cell(subset, cache=cache)
    assert again.status == "ok" and again.data.n["train"] == 40
    assert again.training.feature_cache_hits == {"train": False, "val": True, "test": True}
    assert run_cell(subset, cache=cache).training.feature_cache_hits["train"] is True


def test_matrix_run_keeps_sources_and_starts_transfers_from_them(matrix_run: tuple[Path, ResultStore]) -> None:
    tmp, store = matrix_run
    results = {r.key: r for r in store.results("tm-test")}
    assert len(results) == len(MATRIX.cells()) and all(r.status == "ok" for r in results.values())
    grid = MATRIX.grids[0]
    assert isinstance(grid, TransferGrid)
    for (dataset, _), source in grid.sources(MATRIX).items():
        r = results[source.key]
        ckpt = r.model.checkpoint
        assert hashlib.sha256(Path(ckpt.path).read_bytes()).hexdigest() == ckpt.sha256
        assert r.data.n["train"] == 64  # sources train on the whole split
        for t in (x for x in results.values() if x.cell.init_from == source.key):
            assert t.model.source == f"medzoo:{source.key}" and t.model.init_sha256 == ckpt.sha256
            assert t.data.n["train"] == 40 and t.cell.dataset != dataset
    # the starting backbone is the source's: deep layers copied, the 1-channel stem replicated / 3 for RGB
    src = kept_model(store, "tm-test", grid.sources(MATRIX)["synthetic_binary", 0].key)
    net = zoo.create_model("resnet18_28", pretrained=src.path, num_classes=4, in_chans=3)
    kept, _ = zoo.load_trained(src.path)
    want = kept.state_dict()
    torch.testing.assert_close(net.state_dict()["layer3.1.conv2.weight"], want["layer3.1.conv2.weight"])
    torch.testing.assert_close(net.conv1.weight, want["conv1.weight"].repeat(1, 3, 1, 1) / 3)
    # a second run finds everything done
    assert main(["run", "--suite", "tm-test", "--results-dir", str(tmp / "results"), "--out-dir", str(tmp / "lb")]) == 0


def test_matrix_board_and_heatmap(matrix_run: tuple[Path, ResultStore]) -> None:
    tmp, store = matrix_run
    b = boards.suite_board(store, MATRIX)
    assert set(b["source"]) == {"none", "synthetic_binary", "synthetic_rgb"}
    assert set(b["mode"]) == {"features", "finetune"} and (b["seeds"] == 2).all()
    assert not ((b["source"] == b["target"]).any())
    ft = b[(b["mode"] == "finetune")]
    assert set(ft["source"]) == {"synthetic_binary", "synthetic_rgb"}  # "none" in finetune is the reference itself
    assert ((b["delta_ci_low"] <= b["delta"]) & (b["delta"] <= b["delta_ci_high"])).all()
    # the scratch reference of each target and seed is the budget with the best validation AUC
    results = [r for r in store.results("tm-test") if r.cell.mode == "scratch" and r.cell.protocol.train_subset]
    for (target, seed), runs in pd.DataFrame({"r": results, "t": [r.cell.dataset for r in results],
                                              "s": [r.cell.seed for r in results]}).groupby(["t", "s"])["r"]:
        runs = list(runs)
        assert len(runs) == 2
        chosen = transfer_matrix.chosen_scratch(runs)[seed]
        assert chosen.metrics.val["auc"] == max(r.metrics.val["auc"] for r in runs)
    # a seed that has not run every budget yet has no reference (choosing among what finished is not the rule)
    mine = [r for r in results if r.cell.dataset == results[0].cell.dataset]
    last, longest = max(r.cell.seed for r in mine), max(r.cell.protocol.epochs for r in mine)
    partial = [r for r in mine if (r.cell.seed, r.cell.protocol.epochs) != (last, longest)]
    assert set(transfer_matrix.chosen_scratch(partial)) == {r.cell.seed for r in mine} - {last}
    md = (tmp / "lb" / "tm-test.md").read_text()
    assert "### features" in md and "| *scratch (reference; epochs chosen per seed)* |" in md and "—" in md
    assert "Δbest" in md and " ep)" in md
    assert (tmp / "lb" / "tm-test.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert boards.check(store, MATRIX, tmp / "lb") == []


def test_a_missing_or_tampered_source_is_skipped_or_refused(matrix_run: tuple[Path, ResultStore],
                                                             tmp_path: Path) -> None:
    _, store = matrix_run
    transfer = next(c for c in MATRIX.cells() if c.init_from and c.mode is TransferMode.FINETUNE)
    empty = ResultStore(tmp_path / "results", tmp_path / "ckpt")
    r = run_cell(transfer, store=empty)
    assert r.status == "skipped" and "source cell" in r.reason and "medzoo run --suite tm-test" in r.reason
    assert run_cell(transfer).status == "skipped"  # no store: nowhere to find the source
    path = Path(store.result("tm-test", transfer.init_from).model.checkpoint.path)  # type: ignore[union-attr]
    good = path.read_bytes()
    try:
        path.write_bytes(good[:-8] + b"tampered")
        with pytest.raises(HashMismatchError, match="sha256 mismatch"):
            run_cell(transfer, store=store)
    finally:
        path.write_bytes(good)


def test_export_card_and_offline_hub_round_trip(matrix_run: tuple[Path, ResultStore], offline_env: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    tmp, store = matrix_run
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(offline_env / "hf"))
    finetuned = next(r for r in store.results("tm-test") if r.cell.init_from and r.cell.mode == "finetune")
    [effnet] = store.results("tm-test-timm")
    for i, (result, timm_native) in enumerate(((finetuned, False), (effnet, True))):
        path = tmp / "results" / result.suite.split("@")[0] / f"{result.key}.json"
        out = offline_env / result.key
        assert main(["export", str(path), "--out", str(out), "--repo", "medzoo-test/m"]) == 0
        card = (out / "README.md").read_text()
        for must in ("not a medical device", result.data.license, result.data.citation, result.suite,
                     f"seed {result.cell.seed}", f"{result.test['auc']:.4f}", "CITATION.cff",
                     'zoo.create_model("hf-hub:medzoo-test/m", pretrained=True).eval()'):
            assert must in card, must
        assert ("timm.create_model" in card) is timm_native and "ORG/NAME" not in card
        config = json.loads((out / "config.json").read_text())
        assert config["label_names"] == [f"class {i}" for i in range(config["num_classes"])]
        # the front matter as the Hub reads it: license as config.json, datasets, base model, model-index with CIs
        hub_card = ModelCard.load(out / "README.md")
        assert hub_card.data.license == config["pretrained_cfg"]["license"] == CARD_LICENSES.get(result.data.license,
                                                                                                   "other")
        assert hub_card.data.datasets == [result.data.dataset]
        source = result.model.source or ""
        assert hub_card.data.base_model == (source.removeprefix("hf-hub:") if source.startswith("hf-hub:") else None)
        got = {(e.metric_type, e.dataset_split): e.metric_value for e in hub_card.data.eval_results}
        assert got[("roc_auc", "test")] == pytest.approx(result.test["auc"], abs=1e-6)
        low, high = result.metrics.ci["auc"]
        assert (got[("roc_auc_ci95_low", "test")], got[("roc_auc_ci95_high", "test")]) == pytest.approx((low, high),
                                                                                                      abs=1e-6)
        repo = f"medzoo-test/exported-{i}"
        _hub_cache(offline_env / "hf", repo, {p.name: p.read_bytes() for p in out.iterdir()})
        kept, meta = zoo.load_trained(result.model.checkpoint.path)
        x = torch.randn(2, meta["in_chans"], meta["input_size"], meta["input_size"])
        with torch.no_grad():
            loaded = zoo.create_model(f"hf-hub:{repo}", pretrained=True).eval()
            torch.testing.assert_close(loaded(x), kept(x))
            assert list(zoo.preprocess_of(loaded).mean) == meta["mean"]
            if timm_native:
                torch.testing.assert_close(timm.create_model(f"hf-hub:{repo}", pretrained=True).eval()(x), kept(x))
    # the kept file alone exports too, and finds its result in the store for the card
    assert main(["export", finetuned.model.checkpoint.path, "--out", str(offline_env / "bare"),
                 "--results-dir", str(tmp / "results")]) == 0
    bare = (offline_env / "bare" / "README.md").read_text()
    assert f"{finetuned.test['auc']:.4f}" in bare and 'zoo.load_pretrained("bare")' in bare
    assert "ORG/NAME" not in bare


def test_export_refuses_cells_without_a_kept_model(matrix_run: tuple[Path, ResultStore], tmp_path: Path) -> None:
    tmp, store = matrix_run
    features = next(r for r in store.results("tm-test") if r.cell.mode == "features")
    assert main(["export", str(tmp / "results" / "tm-test" / f"{features.key}.json"), "--out", str(tmp_path)]) == 2
    assert main(["export", str(tmp_path / "nothing.json"), "--out", str(tmp_path)]) == 2
    source = next(r for r in store.results("tm-test") if r.model.checkpoint is not None)
    assert main(["predict", source.model.checkpoint.path, "x.png", "--out", str(tmp_path)]) == 2


def test_push_uploads_the_folder_to_a_hub_stand_in_and_fails_clearly_offline(
        matrix_run: tuple[Path, ResultStore], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp, store = matrix_run
    result = next(r for r in store.results("tm-test") if r.model.checkpoint is not None)
    out = tmp_path / "export"
    assert main(["export", str(tmp / "results" / "tm-test" / f"{result.key}.json"), "--out", str(out)]) == 0
    hub = Hub()
    try:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        url = push(out, "medzoo-test/pushed", token="hf_test")
        assert url.startswith(f"{hub.url}/medzoo-test/pushed/commit/")
        assert "medzoo-test/pushed" in hub.repos
        assert hub.files == {p.name: p.read_bytes() for p in out.iterdir()}  # every byte arrived
    finally:
        hub.close()
    with pytest.raises(MedzooError, match="cannot reach the Hub"):
        push(out, "medzoo-test/pushed")  # the stand-in is gone: nothing listens there
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["push", str(out), "--repo", "medzoo-test/pushed"]) == 2
    with pytest.raises(MedzooError, match="not an exported model folder"):
        push(tmp_path, "medzoo-test/pushed")


def test_model_card_without_a_result_says_so() -> None:
    meta = {"arch": "resnet18_28", "in_chans": 1, "num_classes": 2, "label_names": ["a", "b"], "mean": [0.5],
            "std": [0.5], "input_size": 28, "trained_on": "breastmnist", "cell": "k"}
    card = model_card(meta, None)
    assert "reports none" in card and "CC BY 4.0" in card and "license: cc-by-4.0" in card
    data = ModelCard(card).data
    assert data.license == "cc-by-4.0" and data.datasets == ["breastmnist"] and not data.eval_results
