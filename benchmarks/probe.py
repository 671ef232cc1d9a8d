"""One `features`-mode cell: frozen backbone features of a MedMNIST dataset, a scikit-learn head fit on train,
scored on test. Pure: returns a `ProbeResult`; the CLI prints it.

It answers the first question a user has about a set of weights — are its frozen features any good on my images,
compared with the same network at random initialisation?
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

import zoo
from benchmarks.data import DATASETS, Split, Task
from benchmarks.metrics import evaluate
from zoo import MedzooError


@dataclass(frozen=True)
class ProbeResult:
    model: str  # arch.tag, or arch.random
    dataset: str
    size: int  # the size the cell ran at: max(requested, the model's minimum)
    head: str
    seed: int
    val_auc: float
    test_auc: float
    feature_dim: int
    seconds: float


def probe(
    model: str,
    dataset: str,
    size: int = 64,
    pretrained: bool = True,
    head: str = "logistic",
    seed: int = 0,
    data_dir: Path | str | None = None,
    on_split: Callable[[str], None] | None = None,
) -> ProbeResult:
    """Fit `head` on frozen features of the train split and score it on validation and test.

    Images come from the 28 px MedMNIST files, resized to `size` with the weights' interpolation.
    """
    ds = DATASETS.get(dataset)
    if ds.task is Task.MULTILABEL:
        raise MedzooError(f"{dataset} is multi-label; `medzoo probe` takes single-label datasets "
                          f"(binary, multi-class, ordinal)")
    spec, weights = zoo.resolve(model)
    size = max(size, spec.min_size)
    torch.manual_seed(seed)
    net = zoo.create_model(model, pretrained=pretrained, in_chans=ds.n_channels)
    t0 = time.perf_counter()
    feats, labels = {}, {}
    for split in Split:
        if on_split:
            on_split(split.value)
        images, y = ds.load(split, 28, data_dir)
        feats[split] = zoo.extract_features(net, zoo.preprocess_images(images, net, size=size)).numpy()
        labels[split] = y
    clf = zoo.fit_head(zoo.make_head(head, seed=seed), feats[Split.TRAIN], labels[Split.TRAIN].ravel())
    scores = {s: clf.predict_proba(feats[s]) for s in (Split.VAL, Split.TEST)}
    tag = weights.tag if pretrained and weights else "random"
    return ProbeResult(model=f"{spec.name}.{tag}", dataset=dataset, size=size, head=head, seed=seed,
                       val_auc=evaluate(labels[Split.VAL], scores[Split.VAL], ds.task)["auc"],
                       test_auc=evaluate(labels[Split.TEST], scores[Split.TEST], ds.task)["auc"],
                       feature_dim=feats[Split.TRAIN].shape[1], seconds=time.perf_counter() - t0)
