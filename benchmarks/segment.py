"""Segmentation cells: U-Nets trained on random patches by the harness's one training loop (`harness.train`), and
scored on whole images by sliding-window inference with `benchmarks.seg_metrics`.

Protocol (`SegProtocol`): an epoch is `patches_per_epoch` random crops of the training images, one flip/rotation
draw per batch, loss BCE + Dice (MONAI's `DiceCELoss`, sigmoid, batch Dice); validation every epoch on a fixed set
of crops of the validation images (same crops for every cell and seed) and every `val_full_every` epochs on the
whole validation images; the best epoch by `monitor` is scored on the whole test images (sliding window, overlapping
windows' probabilities averaged). Threshold 0.5 throughout.

How a dataset is scored is data (`SCORERS`): vessels are pooled over the pixels inside the field of view (and, as
`whole_*`, over every pixel); ISBI-2012 membranes get Dice/IoU, pixel error and adapted Rand error. Where a dataset
has a second human observer, it is scored against the first with the same scorer and stored with each result as the
human baseline. The trained weights are kept as a safetensors file that `medzoo predict` reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.losses import DiceCELoss
from torch import nn

import zoo
from benchmarks.datasets import DATASETS, DatasetNotFoundError, Split
from benchmarks.datasets.segmentation import SegSample, load_samples
from benchmarks.harness import (Loop, Report, _quiet, _training, apply_flips, autocast, draw_flips, provenance,
                                seed_everything, train)
from benchmarks.results import Result, ResultStore
from benchmarks.seg_metrics import isbi_metrics, segmentation_metrics
from benchmarks.suites import Cell, SegProtocol
from zoo import MedzooError, TransferMode, WeightsUnavailableError

THRESHOLD = 0.5
VAL_PATCH_SEED = 0  # the fixed validation crops: the same for every cell, seed and model
PER_IMAGE_KEYS = ("auc", "acc", "sensitivity", "specificity", "f1", "iou")


# --- scoring -----------------------------------------------------------------------------------------------------
def _pooled(probs: list[np.ndarray], samples: list[SegSample], attr: str = "mask") -> tuple[np.ndarray, ...]:
    return (np.concatenate([p.ravel() for p in probs]), np.concatenate([getattr(s, attr).ravel() for s in samples]),
            np.concatenate([s.fov.ravel() for s in samples]))


def score_vessels(probs: list[np.ndarray], samples: list[SegSample]) -> dict[str, float]:
    """Pooled pixel metrics inside the FOV, and over the whole image as `whole_*`."""
    p, t, fov = _pooled(probs, samples)
    inside = segmentation_metrics(p, t, fov, THRESHOLD)
    whole = segmentation_metrics(p, t, None, THRESHOLD)
    return inside | {f"whole_{k}": whole[k] for k in ("auc", "acc", "sensitivity", "specificity", "f1", "iou")}


def score_membranes(probs: list[np.ndarray], samples: list[SegSample]) -> dict[str, float]:
    """ISBI-2012: membrane Dice/IoU, pixel error, adapted Rand error, AUC (and Se/Sp/Acc for the record)."""
    isbi = isbi_metrics(np.stack(probs), np.stack([s.mask for s in samples]), THRESHOLD)
    p, t, _ = _pooled(probs, samples)
    base = segmentation_metrics(p, t, None, THRESHOLD)
    return isbi | {k: base[k] for k in ("acc", "sensitivity", "specificity", "f1", "prevalence", "n_pixels")}


SCORERS: dict[str, Callable[[list[np.ndarray], list[SegSample]], dict[str, float]]] = {
    "chase_db1": score_vessels, "drive": score_vessels, "isbi2012": score_membranes,
}


def per_image(probs: list[np.ndarray], samples: list[SegSample]) -> list[dict[str, Any]]:
    """Per-image metrics inside the FOV (for spread across images, and to find the worst case)."""
    out = []
    for p, s in zip(probs, samples, strict=True):
        m = segmentation_metrics(p, s.mask, s.fov, THRESHOLD)
        out.append({"id": s.id} | {k: round(m[k], 6) for k in PER_IMAGE_KEYS})
    return out


def human_baseline(dataset: str, samples: list[SegSample]) -> dict[str, float] | None:
    """The second observer scored against the first with the dataset's scorer; None without a second observer.
    AUC is dropped: a binary rater has one operating point, not a curve."""
    if not samples or any(s.mask2 is None for s in samples):
        return None
    scores = SCORERS[dataset]([s.mask2.astype(np.float64) for s in samples if s.mask2 is not None], samples)
    return {k: v for k, v in scores.items() if "auc" not in k}


# --- patches -----------------------------------------------------------------------------------------------------
@dataclass
class Images:
    """Normalised images `(C, H, W)` and 0/1 masks `(H, W)` of one split."""

    x: list[torch.Tensor]
    y: list[torch.Tensor]

    @classmethod
    def of(cls, samples: list[SegSample], mean: tuple[float, ...], std: tuple[float, ...]) -> Images:
        return cls([zoo.image_to_tensor(s.image, mean, std) for s in samples],
                   [torch.from_numpy(s.mask.astype(np.float32)) for s in samples])

    def crops(self, n: int, size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """`n` random `size` x `size` crops (an image drawn uniformly, then a position): `(n, C, s, s)` and
        `(n, 1, s, s)`."""
        xs, ys = [], []
        for i in torch.randint(len(self.x), (n,), generator=gen).tolist():
            h, w = self.y[i].shape
            if size > min(h, w):
                raise MedzooError(f"patch_size {size} is larger than a {w}x{h} image: lower patch_size")
            top = int(torch.randint(h - size + 1, (1,), generator=gen))
            left = int(torch.randint(w - size + 1, (1,), generator=gen))
            xs.append(self.x[i][:, top:top + size, left:left + size])
            ys.append(self.y[i][None, top:top + size, left:left + size])
        return torch.stack(xs), torch.stack(ys)


def _dice(logits: torch.Tensor, y: torch.Tensor) -> float:
    pred = logits.sigmoid() >= THRESHOLD
    t = y.bool()
    tp = int((pred & t).sum())
    denom = int(pred.sum()) + int(t.sum())
    return 2 * tp / denom if denom else 1.0


def predict_images(net: nn.Module, images: Images, p: SegProtocol, device: torch.device,
                   report: Report = _quiet, what: str = "") -> list[np.ndarray]:
    out = []
    for i, x in enumerate(images.x):
        out.append(zoo.sliding_window(net, x, p.patch_size, p.overlap, p.batch_size, device).numpy())
        report("images", i + 1, len(images.x), f"sliding window: {what}")
    return out


def segmentation_loop(train_imgs: Images, val_imgs: Images, val_samples: list[SegSample], p: SegProtocol,
                      device: torch.device, report: Report = _quiet) -> Loop:
    loss_fn = DiceCELoss(sigmoid=True, batch=True)
    n_batches = -(-p.patches_per_epoch // p.batch_size)
    xv, yv = val_imgs.crops(p.val_patches, p.patch_size, torch.Generator().manual_seed(VAL_PATCH_SEED))
    xv = xv.contiguous(memory_format=torch.channels_last)

    def batches(gen: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for b in range(n_batches):
            n = min(p.batch_size, p.patches_per_epoch - b * p.batch_size)
            x, y = train_imgs.crops(n, p.patch_size, gen)
            if p.augment:
                draw = draw_flips(gen)
                x, y = apply_flips(x, draw, (2, 3)), apply_flips(y, draw, (2, 3))
            yield x.contiguous(memory_format=torch.channels_last).to(device), y.to(device)

    @torch.inference_mode()
    def validate(net: nn.Module, epoch: int) -> dict[str, float]:
        was = net.training
        net.eval()
        with autocast(device):
            logits = torch.cat([net(xv[i:i + p.batch_size].to(device)).float().cpu()
                                for i in range(0, len(xv), p.batch_size)])
        net.train(was)
        val = {"val_loss": float(loss_fn(logits, yv)), "val_dice": _dice(logits, yv)}
        if epoch % p.val_full_every == 0:
            probs = predict_images(net, val_imgs, p, device, report, "validation images")
            full = segmentation_metrics(*_pooled(probs, val_samples), THRESHOLD)
            val |= {"val_full_auc": full["auc"], "val_full_f1": full["f1"]}
        return val

    return Loop(batches, n_batches, lambda z, y: loss_fn(z.float(), y), validate)


# --- one cell ----------------------------------------------------------------------------------------------------
def run_segmentation_cell(cell: Cell, data_dir: Path | str | None = None, device: str = "cpu",
                          store: ResultStore | None = None, report: Report = _quiet) -> Result:
    """Train and score one segmentation cell. `skipped` (with the reason) when the weights or the dataset cannot
    be had here (DRIVE is never shipped); with a `store`, epochs are checkpointed and the trained model kept."""
    dev = torch.device(device)
    prov = provenance(dev)
    t0 = time.perf_counter()
    ds = DATASETS.get(cell.dataset)
    p = cell.protocol
    if not isinstance(p, SegProtocol):
        raise MedzooError(f"{cell.dataset} is a segmentation dataset: its suite must use a SegProtocol")
    if cell.mode not in (TransferMode.SCRATCH, TransferMode.FINETUNE):
        raise MedzooError(f"segmentation cells train the whole network (scratch or finetune), not {cell.mode.value}")
    spec = zoo.get_spec(cell.arch)
    if p.patch_size % spec.size_divisor:
        raise MedzooError(f"{cell.arch} needs sizes divisible by {spec.size_divisor}; patch_size is {p.patch_size}")

    def skipped(reason: str) -> Result:
        return Result(key=cell.key, suite=f"{cell.suite}@{cell.version}", cell=cell.config(), status="skipped",
                      reason=reason, provenance=prov)

    try:
        samples = {s: load_samples(cell.dataset, s, data_dir) for s in Split}
    except DatasetNotFoundError as e:
        return skipped(str(e))
    seed_everything(cell.seed)
    try:
        net = zoo.create_model(cell.model if cell.pretrained else cell.arch, pretrained=cell.pretrained,
                               num_classes=1, in_chans=ds.n_channels)
    except WeightsUnavailableError as e:
        return skipped(str(e))
    pre = zoo.preprocess_of(net) if cell.pretrained else zoo.SCRATCH_PREPROCESS.for_channels(ds.n_channels)
    imgs = {s: Images.of(samples[s], pre.mean, pre.std) for s in Split}
    if dev.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    ckpt = (lambda s: store.save_checkpoint(cell, s), lambda: store.load_checkpoint(cell)) if store else None
    loop = segmentation_loop(imgs[Split.TRAIN], imgs[Split.VAL], samples[Split.VAL], p, dev, report)
    out = train(net, cell.mode, loop, p, cell.seed, dev, ckpt, report)
    probs = {s: predict_images(out.net, imgs[s], p, dev, report, s.value) for s in (Split.VAL, Split.TEST)}
    score = SCORERS[cell.dataset]
    model: dict[str, Any] = {"name": cell.model, "arch": spec.name, "family": spec.family, "tag": cell.tag,
                             "source": net.pretrained_cfg.get("source"), "num_params": spec.num_params,
                             "width": spec.feature_dim, "preprocessing": {"mean": list(pre.mean), "std": list(pre.std)}}
    if store is not None:
        path = store.model_path(cell)
        meta = {"arch": spec.name, "num_classes": 1, "in_chans": ds.n_channels, "mean": list(pre.mean),
                "std": list(pre.std), "patch_size": p.patch_size, "overlap": p.overlap, "threshold": THRESHOLD,
                "trained_on": cell.dataset, "cell": cell.key, "positive_class": ds.labels["1"]}
        model["checkpoint"] = {"path": str(path), "sha256": zoo.save_trained(path, out.net, meta)}
    data = {"dataset": ds.name, "task": ds.task.value, "fingerprint": ds.fingerprint(None, data_dir),
            "license": ds.license, "citation": ds.citation, "positive_class": ds.labels["1"],
            "test_images": [s.id for s in samples[Split.TEST]],
            "second_observer": human_baseline(cell.dataset, samples[Split.TEST])}
    prov["duration_s"] = round(time.perf_counter() - t0, 2)
    return Result(
        key=cell.key, suite=f"{cell.suite}@{cell.version}", cell=cell.config(), status="ok",
        metrics=score(probs[Split.TEST], samples[Split.TEST]),
        val_metrics=score(probs[Split.VAL], samples[Split.VAL]),
        per_image=per_image(probs[Split.TEST], samples[Split.TEST]),
        n={s.value: len(samples[s]) for s in Split},
        training=_training(out) | {"time_budget_s": p.time_budget_s, "patches_seen": out.epochs_run *
                                   p.patches_per_epoch, "threads": torch.get_num_threads()},
        data=data, model=model, provenance=prov,
    )
