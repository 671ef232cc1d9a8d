"""The feature cache: keys follow the weights and the data, a second run of a cell reads what the first computed
(and gets the same metrics), and a truncated or tampered entry is recomputed, never used."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import zoo
from benchmarks.cells import run_cell
from benchmarks.cells.feature_cache import FeatureCache, FeatureKey, weights_hash
from benchmarks.cli import main
from benchmarks.suites import Grid, Suite
from zoo import TransferMode

SUITE = Suite("fc", "1", "", (Grid(models=("resnet18_28.random",), datasets=("synthetic_binary",),
                                   modes=(TransferMode.FEATURES,), seeds=(0, 1)),))


def _key(**change: object) -> FeatureKey:
    base = dict(arch="resnet18", weights="w", dataset="d", fingerprint="md5", split="train", data_size=28,
                policy="native", input_size=28, mean=(0.5,), std=(0.5,), device="cpu", precision="fp32")
    return FeatureKey(**{**base, **change})  # type: ignore[arg-type]


def test_weights_hash_follows_the_backbone_not_the_classifier() -> None:
    torch.manual_seed(0)
    a = zoo.create_model("resnet18_28", num_classes=2)
    h = weights_hash(a)
    a.reset_classifier(5)  # a new head (another cell, another seed's head) shares the features
    assert weights_hash(a) == h
    torch.manual_seed(1)
    assert weights_hash(zoo.create_model("resnet18_28", num_classes=2)) != h  # other random weights
    with torch.no_grad():
        next(a.parameters()).add_(1e-3)
    assert weights_hash(a) != h
    digests = {_key().digest, _key(weights="v").digest, _key(fingerprint="other").digest, _key(split="test").digest,
               _key(input_size=64).digest, _key(mean=(0.4,)).digest, _key(device="cuda").digest,
               _key(precision="bf16").digest}
    assert len(digests) == 8


def test_second_run_reads_the_cache_with_identical_results(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path / "cache")
    cell0, cell1 = SUITE.cells()
    first = run_cell(cell0, cache=cache)
    assert first.training.feature_cache_hits == {"train": False, "val": False, "test": False}
    again = run_cell(cell0, cache=cache)
    assert again.training.feature_cache_hits == {"train": True, "val": True, "test": True}
    assert again.metrics == first.metrics and again.blob == first.blob
    other_seed = run_cell(cell1, cache=cache)  # random weights of seed 1 are other weights
    assert not any(other_seed.training.feature_cache_hits.values())
    assert len(cache.entries()) == 6


@pytest.mark.parametrize("damage", ["truncate", "tamper"])
def test_a_damaged_entry_is_recomputed_not_used(tmp_path: Path, damage: str) -> None:
    cache = FeatureCache(tmp_path / "cache")
    [cell] = SUITE.cells()[:1]
    first = run_cell(cell, cache=cache)
    victim = next(p for p in sorted(cache.root.glob("*.safetensors")) if "__test__" in p.name)
    raw, before = victim.read_bytes(), load_file(victim)["features"].clone()
    victim.write_bytes(raw[: len(raw) // 2] if damage == "truncate" else raw[:-8] + bytes(b ^ 0xFF for b in raw[-8:]))
    again = run_cell(cell, cache=cache)
    assert again.training.feature_cache_hits == {"train": True, "val": True, "test": False}
    assert again.metrics == first.metrics
    assert torch.equal(load_file(victim)["features"], before)  # rewritten whole
    assert not list(cache.root.glob(".*.tmp"))


def test_cache_ls_and_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = FeatureCache(tmp_path / "cache")
    key = _key()
    cache.save(key, torch.ones(3, 4))
    loaded, hit = cache.get_or_compute(key, lambda: torch.zeros(3, 4))
    assert hit and torch.equal(loaded, torch.ones(3, 4))
    assert main(["cache", "ls", "--cache-dir", str(cache.root)]) == 0
    assert "resnet18" in capsys.readouterr().out
    assert main(["cache", "clear", "--cache-dir", str(cache.root)]) == 0
    assert "removed 1" in capsys.readouterr().out and not cache.entries()
    assert run_cell(SUITE.cells()[0], cache=None).training.feature_cache_hits == {
        "train": False, "val": False, "test": False}
