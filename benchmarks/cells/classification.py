"""The classification cell: one (model, weights, dataset, resolution, mode, seed) → its `Result`.

`linear_probe`, `finetune` and `scratch` train with the one training loop (`cells.train`); `features` fits the zoo's
scikit-learn heads. A linear probe without augmentation trains its head on features computed once per split: the
backbone is frozen and in eval mode, so this equals forwarding it every epoch, at a fraction of the cost. Pure apart
from the per-epoch checkpoints it hands to the store: no printing, no result files (the runner hands results to the
store).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import zoo
from benchmarks import metrics
from benchmarks.cells.feature_cache import FeatureCache, FeatureKey, weights_hash
from benchmarks.cells.prep import Resolution, SplitData, to_input, train_subset
from benchmarks.cells.provenance import finish, provenance
from benchmarks.cells.train import (
    Loop,
    Report,
    augment,
    index_batches,
    quiet,
    seed_everything,
    train,
    training_record,
)
from benchmarks.data import DATASETS, DatasetSpec, Split, Task
from benchmarks.results import ResultStore
from benchmarks.results.schema import Result, finite, finite_dict, probabilities
from benchmarks.suites import Cell, Protocol
from zoo import MedzooError, TransferMode, WeightsUnavailableError, trained_meta, verify_sha256


# --- the loop's classification parts -------------------------------------------------------------------------------------------
def _loss_fn(task: Task) -> nn.Module:
    return nn.BCEWithLogitsLoss() if task is Task.MULTILABEL else nn.CrossEntropyLoss()


def _targets(y: np.ndarray, task: Task) -> torch.Tensor:
    return torch.as_tensor(y, dtype=torch.float32) if task is Task.MULTILABEL else torch.as_tensor(y.ravel()).long()


@torch.inference_mode()
def predict(net: nn.Module, data: SplitData, transform: Callable[[torch.Tensor], torch.Tensor], task: Task,
             batch_size: int, device: torch.device, precision: str = "fp32") -> tuple[np.ndarray, float]:
    """float32 logits and mean loss on a split, in eval mode, the network run in `precision`."""
    was = net.training
    net.eval()
    outs = []
    for i in index_batches(len(data.x), batch_size):
        with zoo.autocast(net, device, precision):
            z = net(transform(data.take(i).to(device, non_blocking=True)))
        outs.append(z.float().cpu())
    logits = torch.cat(outs)
    net.train(was)
    loss = float(_loss_fn(task)(logits, _targets(data.y, task)))
    return logits.numpy().astype(np.float32), loss


def classification_loop(train_data: SplitData, val_data: SplitData, transform: Callable[[torch.Tensor], torch.Tensor],
                        task: Task, p: Protocol, device: torch.device, images: bool = True) -> Loop:
    """Shuffled batches of a split (augmented when the protocol says so); validation AUC and loss."""
    y_train, loss_fn = _targets(train_data.y, task), _loss_fn(task)

    def batches(gen: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(train_data.x), generator=gen)
        for idx in index_batches(len(order), p.batch_size, order):
            xb = train_data.take(idx)
            if p.augment and images:
                xb = augment(xb, gen)
            # uint8 goes to the device, and is normalised (and resized) there: 4x less to copy than float
            yield transform(xb.to(device, non_blocking=True)), y_train[idx].to(device)

    def validate(net: nn.Module, epoch: int) -> dict[str, float]:
        logits, val_loss = predict(net, val_data, transform, task, p.batch_size, device,
                                   p.precision if images else "fp32")
        return {"val_loss": val_loss, "val_auc": metrics.evaluate(val_data.y, probabilities(logits, task.value),
                                                                  task, only=("auc",))["auc"]}

    return Loop(batches, -(-len(train_data.x) // p.batch_size), lambda z, y: loss_fn(z.float(), y), validate)


# --- one cell ----------------------------------------------------------------------------------------------------
def binary_threshold(task: Task, y_val: np.ndarray, logits_val: np.ndarray) -> float | None:
    """A binary model's operating point, chosen on validation (`metrics.choose_threshold`): what its test
    sensitivity/specificity use, and what `medzoo predict` labels new images with. None for other tasks."""
    if task is not Task.BINARY:
        return None
    return metrics.choose_threshold(y_val, probabilities(logits_val, task.value))


def score_outputs(task: Task, y: dict[Split, np.ndarray], logits: dict[Split, np.ndarray],
                  seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metrics section and the outputs arrays of a classification cell, the metrics computed from exactly the
    arrays stored: probabilities from the float32 logits (`schema.probabilities`); binary sensitivity/specificity
    at the threshold chosen on validation; bootstrap CIs and per-class AUC on test."""
    probs = {s: probabilities(logits[s], task.value) for s in (Split.VAL, Split.TEST)}
    threshold = binary_threshold(task, y[Split.VAL], logits[Split.VAL])
    section = test_section(task, y[Split.TEST], probs[Split.TEST], threshold, seed) | {
        "val": finite_dict(metrics.evaluate(y[Split.VAL], probs[Split.VAL], task))}
    arrays = {}
    for s in (Split.VAL, Split.TEST):
        labels = np.asarray(y[s]).astype(np.int64)
        arrays |= {f"{s.value}/ids": np.arange(len(labels), dtype=np.int64),
                   f"{s.value}/labels": labels.reshape(len(labels), -1),
                   f"{s.value}/logits": np.asarray(logits[s], dtype=np.float32)}
    return section, arrays


def test_section(task: Task, y: np.ndarray, probs: np.ndarray, threshold: float | None, seed: int,
                 ci_metrics: tuple[str, ...] = ("auc", "acc")) -> dict[str, Any]:
    """Test metrics (at `threshold`), bootstrap CIs and per-class AUC of the test probabilities, as a result stores
    them (NaN as None)."""
    ci = {m: tuple(finite(x) for x in metrics.bootstrap_ci(y, probs, task, metric=m, seed=seed)) for m in ci_metrics}
    return {"test": finite_dict(metrics.evaluate(y, probs, task, threshold=threshold)), "ci": ci,
            "per_class_auc": [finite(a) for a in metrics.per_class_auc(y, probs, task)]}


def head_logits(clf: Any, x: np.ndarray, task: Task) -> np.ndarray:
    """float32 logits of a fitted scikit-learn head, such that `schema.probabilities` gives its probabilities:
    a logistic head's decision function (binary: [0, d]); any other head's log-probabilities (multi-label: logits of
    its per-label probabilities), clipped at 1e-30."""
    fitted = clf.estimators_ if hasattr(clf, "estimators_") else [clf]
    finals = [e.steps[-1][1] if hasattr(e, "steps") else e for e in fitted]
    # one-vs-rest puts a constant predictor (decision = the label, not a logit) where a training label never varies
    if all(type(f).__name__.startswith("LogisticRegression") for f in finals):
        d = np.asarray(clf.decision_function(x), dtype=np.float64)
        if d.ndim == 1:
            d = np.stack([np.zeros_like(d), d], axis=1)
        return d.astype(np.float32)
    p = np.clip(np.asarray(clf.predict_proba(x), dtype=np.float64), 1e-30, 1.0)
    if task is Task.MULTILABEL:
        return (np.log(p) - np.log1p(-np.minimum(p, 1 - 1e-16))).astype(np.float32)
    return np.log(p).astype(np.float32)


def _features_head(ds: DatasetSpec, kind: str, seed: int):  # type: ignore[no-untyped-def]
    head = zoo.make_head(kind, seed=seed)
    if ds.task is Task.MULTILABEL:
        from sklearn.multiclass import OneVsRestClassifier

        return OneVsRestClassifier(head)
    return head


def run_classification_cell(
    cell: Cell,
    data_dir: Path | str | None = None,
    device: str = "cpu",
    store: ResultStore | None = None,
    report: Report = quiet,
    cache: FeatureCache | None = None,
    keep_model: bool = False,
) -> Result:
    """Run `cell` and return its Result (`skipped` when its weights cannot be had, with the reason). With a
    `store`, training checkpoints every epoch and resumes from the last one; the caller writes the result. With a
    feature `cache`, frozen-backbone features are read from it or computed once and put there. `keep_model` (with a
    `store`) keeps the best model of a cell that trains the backbone, referenced from the result by path and sha256;
    a cell with `init_from` starts from the model its source cell kept in the same store."""
    dev = torch.device(device)
    prov = provenance(dev, cell.protocol.precision)
    t0 = time.perf_counter()
    ds = DATASETS.get(cell.dataset)
    spec = zoo.get_spec(cell.arch)
    res = Resolution(cell.data_size, cell.policy, cell.input_size, max(cell.input_size, spec.min_size))
    seed_everything(cell.seed)
    try:
        if cell.init_from:
            source = kept_model(store, cell.suite, cell.init_from)
            net = zoo.create_model(cell.arch, pretrained=source.path, num_classes=ds.num_classes,
                                   in_chans=ds.n_channels)
            adapted = zoo.Preprocess(res.input_size, tuple(source.meta["mean"]), tuple(source.meta["std"]))
            adapted = adapted.for_channels(ds.n_channels)  # the source's normalisation, on the target's channels
            net.pretrained_cfg.update(mean=adapted.mean, std=adapted.std, source=f"medzoo:{cell.init_from}",
                                      tag=cell.tag, sha256=source.sha256)
        else:
            net = zoo.create_model(cell.model if cell.pretrained else cell.arch, pretrained=cell.pretrained,
                                   num_classes=ds.num_classes, in_chans=ds.n_channels)
    except WeightsUnavailableError as e:
        return Result(key=cell.key, suite=f"{cell.suite}@{cell.version}", cell=cell.config(), status="skipped",
                      reason=str(e), provenance=finish(prov, t0))
    # from scratch there are no weights whose statistics apply: MedMNIST's mean 0.5 / std 0.5, as the v2 paper.
    # Random-weight *features* controls keep the weights' preprocessing: they differ from the pretrained row only
    # in the weights.
    pre = zoo.SCRATCH_PREPROCESS.for_channels(ds.n_channels) if cell.mode is TransferMode.SCRATCH \
        else zoo.preprocess_of(net)
    data = {s: SplitData(*ds.load(s, cell.data_size, data_dir)) for s in Split}
    ds_train_n = len(data[Split.TRAIN].y)
    if cell.protocol.train_subset:
        data[Split.TRAIN] = train_subset(data[Split.TRAIN], cell.protocol.train_subset, ds.task)
    y = {s: d.y for s, d in data.items()}

    def transform(b: torch.Tensor) -> torch.Tensor:
        return to_input(b, res, pre.mean, pre.std)

    store_ckpt = (lambda s: store.save_checkpoint(cell, s), lambda: store.load_checkpoint(cell)) if store else None
    training: dict[str, Any] = {}
    logits: dict[Split, np.ndarray] = {}
    p = cell.protocol
    net = net.to(dev)
    if dev.type == "cpu":
        net = net.to(memory_format=torch.channels_last)  # oneDNN's fast layout, fp32 and bf16 alike
    fingerprint = ds.fingerprint(cell.data_size, data_dir)
    if cell.mode is TransferMode.FEATURES or (cell.mode is TransferMode.LINEAR_PROBE and not p.augment):
        feats, cache_hits = {}, {}
        backbone = weights_hash(net) if cache else ""
        for split in Split:
            n = -(-len(data[split].x) // p.batch_size)

            def batches(split: Split = split, n: int = n) -> Iterator[torch.Tensor]:
                for i, idx in enumerate(index_batches(len(data[split].x), p.batch_size)):
                    report("features", i + 1, n, f"features: {split.value}")
                    yield transform(data[split].take(idx))

            subset = split is Split.TRAIN and len(data[split].y) < ds_train_n  # a train_subset: other images
            key = FeatureKey(spec.name, backbone, ds.name, fingerprint,
                             f"{split.value}[{len(data[split].y)}]" if subset else split.value, res.data_size,
                             res.policy.value, res.input_size, tuple(pre.mean), tuple(pre.std), dev.type, p.precision)

            def compute(b: Callable[[], Iterator[torch.Tensor]] = batches) -> torch.Tensor:
                return zoo.extract_features(net, b(), device=dev, precision=p.precision)

            feats[split], hit = cache.get_or_compute(key, compute) if cache else (compute(), False)
            cache_hits[split.value] = hit
        if cell.mode is TransferMode.FEATURES:
            clf = zoo.fit_head(_features_head(ds, p.head, cell.seed), feats[Split.TRAIN].numpy(),
                               y[Split.TRAIN] if ds.task is Task.MULTILABEL else y[Split.TRAIN].ravel())
            logits = {s: head_logits(clf, feats[s].numpy(), ds.task) for s in (Split.VAL, Split.TEST)}
            training = {"head": p.head, "feature_dim": int(feats[Split.TRAIN].shape[1]),
                        "feature_cache_hits": cache_hits}
        else:
            zoo.prepare(net, cell.mode, ds.num_classes)
            head = fresh_head(net)
            # standardise with train statistics (a BatchNorm without affine, as MAE's linear probe), then fold
            # the standardisation into the head so it applies to raw features like any timm classifier
            mu, sd = feats[Split.TRAIN].mean(0), feats[Split.TRAIN].std(0)
            sd = torch.where(sd < 1e-6, torch.ones_like(sd), sd)  # a constant feature is centred, not blown up
            z = {s: SplitData((feats[s] - mu) / sd, y[s]) for s in Split}
            loop = classification_loop(z[Split.TRAIN], z[Split.VAL], lambda f: f, ds.task, p, dev, images=False)
            out = train(head, cell.mode, loop, p, cell.seed, dev, store_ckpt, report, images=False)
            logits = {s: predict(out.net, z[s], lambda f: f, ds.task, p.batch_size, dev)[0]
                      for s in (Split.VAL, Split.TEST)}
            with torch.no_grad():
                head.weight.div_(sd.to(head.weight.device))
                head.bias.sub_(head.weight @ mu.to(head.weight.device))
            training = training_record(out) | {"features_cached_in_cell": True, "features_standardised": True,
                                         "feature_cache_hits": cache_hits}
    else:
        zoo.prepare(net, cell.mode, ds.num_classes)
        if cell.pretrained:
            fresh_head(net)
        loop = classification_loop(data[Split.TRAIN], data[Split.VAL], transform, ds.task, p, dev)
        out = train(net, cell.mode, loop, p, cell.seed, dev, store_ckpt, report)
        logits = {s: predict(out.net, data[s], transform, ds.task, p.batch_size, dev, p.precision)[0]
                  for s in (Split.VAL, Split.TEST)}
        training = training_record(out)
    model: dict[str, Any] = {"name": cell.model, "arch": spec.name, "family": spec.family, "tag": cell.tag,
                             "source": net.pretrained_cfg.get("source"), "num_params": spec.num_params,
                             "preprocessing": {"mean": list(pre.mean), "std": list(pre.std)}}
    if cell.init_from:
        model["init_sha256"] = net.pretrained_cfg["sha256"]
    if keep_model and store is not None and cell.keeps_model:
        meta = {"task": ds.task.value, "arch": spec.name, "num_classes": ds.num_classes, "in_chans": ds.n_channels,
                "mean": list(pre.mean), "std": list(pre.std), "input_size": res.input_size,
                "data_size": res.data_size, "policy": res.policy.value, "interpolation": res.interpolation,
                "requested_size": res.requested_size, "resize": ds.resize, "precision": cell.protocol.precision,
                "threshold": binary_threshold(ds.task, y[Split.VAL], logits[Split.VAL]),
                "label_names": [ds.labels[str(i)] for i in range(ds.num_classes)], "trained_on": ds.name,
                "cell": cell.key}
        model["checkpoint"] = store.keep_model(cell, net, meta)
    section, arrays = score_outputs(ds.task, y, logits, cell.seed)
    return Result(
        key=cell.key, suite=f"{cell.suite}@{cell.version}", cell=cell.config(), status="ok", training=training,
        data={"dataset": ds.name, "task": ds.task.value, "fingerprint": fingerprint, "n": {s.value: len(y[s])
              for s in Split}, "license": ds.license, "citation": ds.citation, "data_size": res.data_size,
              "policy": res.policy.value, "requested_size": res.requested_size, "input_size": res.input_size,
              "bumped_to_min_size": res.bumped, "interpolation": res.interpolation}
             | ({"reading": ds.reading} if ds.reading else {}),
        model=model, metrics=section, provenance=finish(prov, t0),
    ).with_outputs(arrays, "classification-logits")


@dataclass(frozen=True)
class KeptModel:
    path: Path
    sha256: str
    meta: dict[str, Any]


def kept_model(store: ResultStore | None, suite: str, key: str) -> KeptModel:
    """The model that cell `key` of `suite` kept in `store`, its sha256 verified; `WeightsUnavailableError` (the
    dependent cell is skipped, and tried again by the next run) says what is missing and how to get it."""
    if store is None:
        raise WeightsUnavailableError(f"this cell starts from the model of cell {key}, which lives in a results store: "
                                      f"run it through `medzoo run` (or pass store=)")
    result = store.result(suite, key)
    fix = f"run `medzoo run --suite {suite}` (source cells run first and keep their models)"
    if result is None or result.status != "ok" or result.model is None:
        raise WeightsUnavailableError(f"source cell {key} has no result in {store.root}: {fix}")
    ckpt = result.model.checkpoint
    if ckpt is None or not Path(ckpt.path).is_file():
        where = ckpt.path if ckpt else "nowhere (it ran without keeping its model)"
        raise WeightsUnavailableError(f"source cell {key} kept no model file (looked at {where}): delete "
                                      f"{store.root / suite / (key + '.json')} and {fix}")
    path = Path(ckpt.path)
    verify_sha256(path, ckpt.sha256)
    return KeptModel(path, ckpt.sha256, trained_meta(path))


def fresh_head(net: nn.Module) -> nn.Linear:
    """Re-initialise the new classifier of a pretrained model: N(0, 0.01) weights, zero bias (as MAE/DINO probes).
    Family inits differ (timm's EfficientNet draws U(±1/sqrt(classes)): logits of ±25 on 1280 features), and a
    probe's result should not depend on that."""
    head = net.get_classifier()
    if not isinstance(head, nn.Linear):
        raise MedzooError(f"{type(net).__name__}'s classifier is {type(head).__name__}, not a Linear layer")
    nn.init.normal_(head.weight, std=0.01)
    nn.init.zeros_(head.bias)
    return head


