"""Predicting with a trained model: load one that `medzoo run` kept or `medzoo export` wrote, and classify image
files exactly as its training data was read (`medzoo predict` prints and writes what these return)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

import zoo
from benchmarks.cells.classification import predict
from benchmarks.cells.prep import Resolution, SplitData, to_input
from benchmarks.data.images import as_channels, fit, read_image
from benchmarks.results.schema import probabilities
from benchmarks.suites import Policy
from zoo import Task


def load_model(source: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A model `medzoo run` kept (.safetensors), or one `medzoo export` wrote (a folder, or `hf-hub:ORG/NAME`),
    with the facts predicting needs (the kept file's metadata; an export's config.json)."""
    if not (source.startswith("hf-hub:") or Path(source).is_dir()):
        return zoo.load_trained(source)
    net = zoo.load_pretrained(source)
    cfg = net.pretrained_cfg
    facts = dict(cfg.get("medzoo") or {})
    if "task" not in facts and not all(k in facts for k in zoo.SEGMENTATION_META):
        raise zoo.MedzooError(f"{source} was not exported by `medzoo export` (its config.json has no medzoo facts: "
                              f"task, input policy): predict with the kept .safetensors instead")
    return net, {"arch": cfg["architecture"], "in_chans": cfg["input_size"][0], "input_size": cfg["input_size"][-1],
                 "mean": list(cfg["mean"]), "std": list(cfg["std"]), "label_names": cfg["label_names"], **facts}


def classify(net: torch.nn.Module, meta: dict[str, Any], paths: list[str], device: str,
             threshold: float | None = None) -> tuple[list[str], np.ndarray, list[str]]:
    """(predicted labels, probabilities (N, K), class names) of image files, read and brought to the model's
    input exactly as its training data was (`data.images`, the dataset's resize policy, the cell's input policy
    and precision). `threshold`: a binary model's (default: the one it chose on validation) or a multi-label
    model's per label (default 0.5)."""
    task, names = Task(meta["task"]), list(meta["label_names"])
    size, chans = int(meta["data_size"]), int(meta["in_chans"])
    arrays = [fit(as_channels(read_image(path).array, chans), size, meta.get("resize", "pad")) for path in paths]
    res = Resolution(size, Policy(meta["policy"]), int(meta.get("requested_size", meta["input_size"])),
                     int(meta["input_size"]))
    mean, std = tuple(meta["mean"]), tuple(meta["std"])
    logits, _ = predict(net, SplitData(np.stack(arrays), np.zeros((len(arrays), 1), np.int64)),
                        lambda b: to_input(b, res, mean, std), task, 64, torch.device(device),
                        meta.get("precision", "fp32"))
    probs = probabilities(logits, task.value)
    if task is Task.BINARY:
        p1 = probs[:, -1] if probs.ndim == 2 else probs
        cut = threshold if threshold is not None else meta.get("threshold")
        labels = [names[int(p >= (0.5 if cut is None else cut))] for p in p1]
        probs = np.stack([1 - p1, p1], axis=1)
    elif task is Task.MULTILABEL:
        cut = 0.5 if threshold is None else threshold
        labels = ["|".join(n for n, p in zip(names, row, strict=True) if p >= cut) for row in probs]
    else:
        labels = [names[int(i)] for i in probs.argmax(1)]
    return labels, probs, names
