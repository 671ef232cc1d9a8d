"""Deterministic precision parity: the same fp32-trained weights evaluated with the network in fp32 and in bf16.

Training in bf16 changes the weights; this isolates what bf16 *arithmetic* does to a model's scores. Each check runs
the cell in fp32 through the cell code, then scores its test split twice, changing nothing but the precision the
network runs in:
- `features` / `linear_probe` cells: the fp32 cell runs on a feature cache; its test entry is then replaced by the
  test features the backbone gives in bf16 and the fp32 cell runs again on that cache — the same head, fit (or
  trained, and selected on validation) on the same fp32 features, scores bf16 test features;
- `scratch` / `finetune` cells and U-Nets: the fp32 cell keeps its best model, which is read back and scored in
  both precisions (classification: `predict`; segmentation: sliding window, pooled AUC by the dataset's scorer).
Pure: returns rows; `scripts/precision_parity.py` writes the report.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

import zoo
from benchmarks import metrics
from benchmarks.cells import run_cell
from benchmarks.cells.classification import predict
from benchmarks.cells.feature_cache import FeatureCache, FeatureKey
from benchmarks.cells.prep import Resolution, SplitData, to_input
from benchmarks.data import DATASETS, Split
from benchmarks.results import ResultStore
from benchmarks.results.schema import Result, probabilities
from benchmarks.suites import Cell, Policy
from zoo import TransferMode


@dataclass(frozen=True)
class Parity:
    cell: str  # the fp32 cell's label
    key: str
    metric: str  # test AUC (segmentation: pooled over the test images' pixels)
    fp32: float
    bf16: float
    pairs: metrics.Reordering | None = None  # binary classification: which test pairs bf16 re-orders

    @property
    def delta(self) -> float:
        return self.bf16 - self.fp32

    def record(self) -> dict[str, Any]:
        return {"cell": self.cell, "key": self.key, "metric": self.metric, "fp32": self.fp32, "bf16": self.bf16,
                "delta": self.delta} | ({"pairs": asdict(self.pairs)} if self.pairs else {})


def fp32_twin(cell: Cell) -> Cell:
    return replace(cell, protocol=replace(cell.protocol, precision="fp32"), overrides=())


def _auc(result: Result) -> float:
    auc = result.test["auc"]
    if auc is None:
        raise ValueError(f"{result.key}: test AUC undefined")
    return float(auc)


def _test_scores(result: Result) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) of the test split, from the outputs a cell just attached to its result."""
    from safetensors.numpy import load

    assert result.blob is not None and result.data is not None
    arrays = load(result.blob)
    return arrays["test/labels"], probabilities(arrays["test/logits"], result.data.task)


def _reordering(y: np.ndarray, fp32: np.ndarray, bf16: np.ndarray) -> metrics.Reordering | None:
    return metrics.reordering(y, fp32, bf16) if fp32.ndim == 2 and fp32.shape[1] == 2 else None


def frozen_features(cell: Cell, data_dir: Path | str | None, bf16_cache: FeatureCache | None = None) -> Parity:
    """A `features` or `linear_probe` cell: fp32 head, test features in fp32 vs bf16 (see the module docstring).
    The bf16 test features are read from `bf16_cache` when a bf16 run of the cell left them there (the suite's own
    run), else computed by running the bf16 cell."""
    cell = fp32_twin(cell)
    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(Path(tmp) / "features")
        ref = run_cell(cell, data_dir=data_dir, cache=cache)
        test_entry = next(e for e in cache.entries() if e["split"] == "test")
        fields = {k: v for k, v in FeatureCache.key_fields(Path(test_entry["path"])).items() if k != "format"}
        key = FeatureKey(**{**fields, "mean": tuple(fields["mean"]), "std": tuple(fields["std"])})
        low_key = replace(key, precision="bf16")
        low = bf16_cache.load(low_key) if bf16_cache else None
        if low is None:
            run_cell(replace(cell, protocol=replace(cell.protocol, precision="bf16")), data_dir=data_dir, cache=cache)
            low = cache.load(low_key)
        if low is None:
            raise RuntimeError(f"{cell.key}: the bf16 cell left no test features under {low_key}")
        cache.save(key, low)  # the fp32 cell now reads bf16 test features (train and val stay fp32)
        mixed = run_cell(cell, data_dir=data_dir, cache=cache)
    hits = mixed.training.feature_cache_hits if mixed.training else None
    if hits != {"train": True, "val": True, "test": True}:
        raise RuntimeError(f"{cell.key}: the re-run did not read the cache ({hits})")
    (y, a), (_, b) = _test_scores(ref), _test_scores(mixed)
    return Parity(cell.label, cell.key, "test AUC", _auc(ref), _auc(mixed), _reordering(y, a, b))


def trained_classifier(cell: Cell, data_dir: Path | str | None) -> Parity:
    """A `scratch` / `finetune` cell: its fp32 model, test logits in fp32 and in bf16."""
    cell = fp32_twin(cell)
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultStore(Path(tmp) / "results", Path(tmp) / "ckpt")
        ref = run_cell(cell, data_dir=data_dir, store=store, keep_model=True)
        assert ref.model is not None and ref.model.checkpoint is not None
        net, meta = zoo.load_trained(ref.model.checkpoint.path)
        ds = DATASETS.get(cell.dataset)
        res = Resolution(meta["data_size"], Policy(meta["policy"]), cell.input_size, meta["input_size"])
        test = SplitData(*ds.load(Split.TEST, cell.data_size, data_dir))
        net = net.to(memory_format=torch.channels_last)

        def transform(b: torch.Tensor) -> torch.Tensor:
            return to_input(b, res, tuple(meta["mean"]), tuple(meta["std"]))

        probs = {}
        for precision in ("fp32", "bf16"):
            logits, _ = predict(net, test, transform, ds.task, cell.protocol.batch_size, torch.device("cpu"),
                                precision)
            probs[precision] = probabilities(logits, ds.task.value)
    aucs = {p: float(metrics.evaluate(test.y, s, ds.task)["auc"]) for p, s in probs.items()}
    if abs(aucs["fp32"] - _auc(ref)) > 1e-9:
        raise RuntimeError(f"{cell.key}: the kept model scores {aucs['fp32']} in fp32, the cell stored {_auc(ref)}")
    return Parity(cell.label, cell.key, "test AUC", aucs["fp32"], aucs["bf16"],
                  _reordering(test.y, probs["fp32"], probs["bf16"]))


def segmentation(cell: Cell, data_dir: Path | str | None, store: ResultStore) -> Parity:
    """A U-Net cell of `store` (fp32, its model kept): pooled test AUC with the network in fp32 and in bf16."""
    from benchmarks.cells.segmentation import Images, SegOutputs, scorer_of
    from benchmarks.data.seg import load_samples

    result = store.result(cell.suite, cell.key)
    if result is None or result.model is None or result.model.checkpoint is None:
        raise RuntimeError(f"no fp32 result with a kept model for {cell.key} in {store.root}: run it first")
    net, meta = zoo.load_trained(result.model.checkpoint.path)
    zoo.verify_sha256(Path(result.model.checkpoint.path), result.model.checkpoint.sha256)
    net = net.to(memory_format=torch.channels_last)
    samples = load_samples(cell.dataset, Split.TEST, data_dir)
    imgs = Images.of(samples, tuple(meta["mean"]), tuple(meta["std"]))
    scorer, p = scorer_of(cell.dataset), cell.protocol
    aucs = {}
    for precision in ("fp32", "bf16"):
        probs = [zoo.sliding_window(net, x, meta["patch_size"], meta["overlap"], p.batch_size, "cpu",
                                    precision).numpy() for x in imgs.x]
        aucs[precision] = float(scorer.score(SegOutputs.of(probs, samples, scorer.spatial))["auc"])
    return Parity(cell.label, cell.key, "pooled test AUC", aucs["fp32"], aucs["bf16"])


def classification(cell: Cell, data_dir: Path | str | None, bf16_cache: FeatureCache | None = None) -> Parity:
    if cell.mode in (TransferMode.FEATURES, TransferMode.LINEAR_PROBE) and not cell.protocol.augment:
        return frozen_features(cell, data_dir, bf16_cache)
    return trained_classifier(cell, data_dir)


def summary(rows: list[Parity], bound: float) -> dict[str, Any]:
    worst = max((abs(r.delta) for r in rows), default=float("nan"))
    return {"rows": [r.record() for r in rows], "max_abs_delta": worst, "bound": bound,
            "within": bool(np.isfinite(worst) and worst <= bound)}


@dataclass(frozen=True)
class TrainingParity:
    """Seed-paired bf16-trained vs fp32-trained runs of one configuration."""

    what: str
    seeds: list[int]
    fp32: list[float]
    bf16: list[float]
    test_rows: metrics.PairedBootstrap  # CI over test rows (seeds fixed)
    hierarchical: metrics.PairedBootstrap  # CI over seeds and test rows

    def record(self) -> dict[str, Any]:
        return {"what": self.what, "seeds": self.seeds, "fp32": self.fp32, "bf16": self.bf16,
                "per_seed_delta": [b - a for a, b in zip(self.fp32, self.bf16)],
                "mean_delta": self.hierarchical.delta,
                "ci_test_rows": [self.test_rows.ci_low, self.test_rows.ci_high],
                "ci_seeds_and_rows": [self.hierarchical.ci_low, self.hierarchical.ci_high]}


def training(store: ResultStore, fp32: list[Result], bf16: list[Result], what: str) -> TrainingParity:
    """Δ test AUC (bf16 − fp32) of runs paired by seed, from their stored outputs."""
    by_seed = {r.cell.seed: r for r in fp32}
    pairs = [(by_seed[r.cell.seed], r) for r in sorted(bf16, key=lambda r: r.cell.seed) if r.cell.seed in by_seed]
    if not pairs:
        raise ValueError(f"{what}: no seed has both an fp32 and a bf16 result")
    scores = [(store.scores(a), store.scores(b)) for a, b in pairs]
    y = scores[0][0][0]
    if any(not np.array_equal(y, s[0]) or not np.array_equal(y, t[0]) for s, t in scores):
        raise ValueError(f"{what}: the runs were scored on different test labels")
    task = pairs[0][0].data.task if pairs[0][0].data else "binary"
    a_scores, b_scores = [s[1] for s, _ in scores], [t[1] for _, t in scores]
    return TrainingParity(what, [a.cell.seed for a, _ in pairs], [_auc(a) for a, _ in pairs],
                          [_auc(b) for _, b in pairs],
                          metrics.paired_bootstrap_seeds(y, b_scores, a_scores, task),
                          metrics.paired_seeds_hierarchical(y, b_scores, a_scores, task))
