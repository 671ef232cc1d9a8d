"""Segmentation cells: U-Nets trained on random patches by the one training loop (`cells.train`), and
scored on whole images by sliding-window inference with `benchmarks.metrics.segmentation`.

Protocol (`SegProtocol`): an epoch is `patches_per_epoch` random crops of the training images, one flip/rotation
draw per batch, loss BCE + Dice (MONAI's `DiceCELoss`, sigmoid, batch Dice); validation every epoch on a fixed set
of crops of the validation images (same crops for every cell and seed) and every `val_full_every` epochs on the
whole validation images; the best epoch by `monitor` is scored on the whole test images (sliding window, overlapping
windows' probabilities averaged). Threshold 0.5 throughout.

How a dataset is scored is data: it names one of `SCORERS` (`SegDataset.scorer`). Vessels are pooled over the pixels inside the field of view (and, as
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
from torch import nn

import zoo
from benchmarks.cells.feature_cache import FeatureCache
from benchmarks.cells.provenance import finish, provenance
from benchmarks.cells.train import (
    Loop,
    Report,
    apply_flips,
    draw_flips,
    quiet,
    seed_everything,
    train,
    training_record,
)
from benchmarks.data import DATASETS, DatasetNotFoundError, Split
from benchmarks.data.seg import SegSample, load_samples, seg_dataset
from benchmarks.metrics.segmentation import (
    LEVELS,
    dense_histograms,
    dice,
    histogram_metrics,
    image_histograms,
    membrane_metrics,
    quantise,
    segmentation_metrics,
    sparse_histograms,
    threshold_level,
)
from benchmarks.results import ResultStore
from benchmarks.results.schema import Result, finite_dict
from benchmarks.suites import Cell, SegProtocol
from zoo import MedzooError, TransferMode, WeightsUnavailableError
from zoo.extras import require

THRESHOLD = 0.5
VAL_PATCH_SEED = 0  # the fixed validation crops: the same for every cell, seed and model
PER_IMAGE_KEYS = ("auc", "acc", "sensitivity", "specificity", "f1", "iou")


# --- scoring: from the stored outputs -----------------------------------------------------------------------------
@dataclass
class SegOutputs:
    """What a segmentation cell stores of one split, and scores from: per image, the counts of its uint16-quantised
    probabilities split by FOV and ground truth (`metrics.segmentation.image_histograms`); for scorers that need the
    pixels' layout (ISBI's Rand error), the thresholded prediction and the ground truth as bit masks."""

    ids: list[str]
    hists: np.ndarray  # (n, 2 [outside/inside FOV], 2 [truth neg/pos], LEVELS + 1)
    pred: np.ndarray | None = None  # (n, H, W) bool at THRESHOLD
    truth: np.ndarray | None = None

    @classmethod
    def of(cls, probs: list[np.ndarray], samples: list[SegSample], spatial: bool, attr: str = "mask") -> SegOutputs:
        qs = [quantise(p) for p in probs]
        truths = [getattr(s, attr).astype(bool) for s in samples]
        hists = np.stack([image_histograms(q, t, s.fov) for q, t, s in zip(qs, truths, samples, strict=True)])
        k = threshold_level(THRESHOLD)
        return cls([s.id for s in samples], hists, np.stack([q >= k for q in qs]) if spatial else None,
                    np.stack(truths) if spatial else None)

    def arrays(self, split: str) -> dict[str, np.ndarray]:
        out = {f"{split}/{k}": v for k, v in sparse_histograms(self.hists).items()}
        if self.pred is not None and self.truth is not None:
            out |= {f"{split}/mask_shape": np.asarray(self.pred.shape, np.int64),
                    f"{split}/pred_bits": np.packbits(self.pred, axis=-1),
                    f"{split}/truth_bits": np.packbits(self.truth, axis=-1)}
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], split: str, ids: list[str]) -> SegOutputs:
        hists = dense_histograms(*(arrays[f"{split}/hist_{k}"] for k in ("offsets", "levels", "counts")))
        if f"{split}/pred_bits" not in arrays:
            return cls(ids, hists)
        w = int(arrays[f"{split}/mask_shape"][-1])
        bits = [np.unpackbits(arrays[f"{split}/{k}_bits"], axis=-1, count=w).astype(bool)
                for k in ("pred", "truth")]
        return cls(ids, hists, *bits)


def score_pooled(o: SegOutputs) -> dict[str, float]:
    """Pooled pixel metrics inside the FOV (vessels), and over the whole image as `whole_*`."""
    inside = histogram_metrics(o.hists[:, 1].sum(0), THRESHOLD)
    whole = histogram_metrics(o.hists.sum((0, 1)), THRESHOLD)
    return inside | {f"whole_{k}": whole[k] for k in ("auc", "acc", "sensitivity", "specificity", "f1", "iou")}


def score_membranes(o: SegOutputs) -> dict[str, float]:
    """ISBI-2012: membrane Dice/IoU, pixel error, adapted Rand error (per slice, from the bit masks; see
    `metrics.segmentation.isbi_metrics`), AUC, and Se/Sp/Acc for the record."""
    if o.pred is None or o.truth is None:
        raise MedzooError("membrane scoring needs the stored bit masks (pred_bits, truth_bits)")
    base = histogram_metrics(o.hists.sum((0, 1)), THRESHOLD)
    return membrane_metrics(base, o.pred, o.truth) | {
        k: base[k] for k in ("acc", "sensitivity", "specificity", "f1", "prevalence", "n_pixels")}


@dataclass(frozen=True)
class Scorer:
    score: Callable[[SegOutputs], dict[str, float]]
    spatial: bool = False  # needs the bit masks, not only the histograms


SCORERS: dict[str, Scorer] = {"pooled": Scorer(score_pooled), "membranes": Scorer(score_membranes, True)}
"""Scorers by name; a dataset names its own (`SegDataset.scorer`)."""


def scorer_of(dataset: str) -> Scorer:
    return SCORERS[seg_dataset(dataset).scorer]


def per_image(o: SegOutputs) -> list[dict[str, Any]]:
    """Per-image metrics inside the FOV (for spread across images, and to find the worst case)."""
    out = []
    for i, image_id in enumerate(o.ids):
        m = histogram_metrics(o.hists[i, 1], THRESHOLD)
        out.append({"id": image_id, "metrics": finite_dict({k: m[k] for k in PER_IMAGE_KEYS})})
    return out


def score(dataset: str, outputs: dict[Split, SegOutputs]) -> dict[str, Any]:
    """The metrics section of a segmentation result, from its outputs (also how a stored result is re-scored)."""
    scorer = scorer_of(dataset).score
    return {"test": finite_dict(scorer(outputs[Split.TEST])), "val": finite_dict(scorer(outputs[Split.VAL])),
            "per_image": per_image(outputs[Split.TEST])}


def human_baseline(dataset: str, samples: list[SegSample]) -> dict[str, float | None] | None:
    """The second observer scored against the first with the dataset's scorer; None without a second observer.
    AUC is dropped: a binary rater has one operating point, not a curve."""
    if not samples or any(s.mask2 is None for s in samples):
        return None
    scorer = scorer_of(dataset)
    probs = [s.mask2.astype(np.float64) for s in samples if s.mask2 is not None]
    scores = scorer.score(SegOutputs.of(probs, samples, scorer.spatial))
    return finite_dict({k: v for k, v in scores.items() if "auc" not in k})


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


def predict_images(net: nn.Module, images: Images, p: SegProtocol, device: torch.device,
                   report: Report = quiet, what: str = "") -> list[np.ndarray]:
    out = []
    for i, x in enumerate(images.x):
        out.append(zoo.sliding_window(net, x, p.patch_size, p.overlap, p.batch_size, device, p.precision).numpy())
        report("images", i + 1, len(images.x), f"sliding window: {what}")
    return out


def segmentation_loop(train_imgs: Images, val_imgs: Images, val_samples: list[SegSample], p: SegProtocol,
                      device: torch.device, report: Report = quiet) -> Loop:
    loss_fn = require("monai.losses", "segmentation training").DiceCELoss(sigmoid=True, batch=True)
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
        outs = []
        for i in range(0, len(xv), p.batch_size):
            with zoo.autocast(net, device, p.precision):
                z = net(xv[i:i + p.batch_size].to(device))
            outs.append(z.float().cpu())
        logits = torch.cat(outs)
        net.train(was)
        val = {"val_loss": float(loss_fn(logits, yv)), "val_dice": dice((logits.sigmoid() >= THRESHOLD).numpy(), yv.bool().numpy())}
        if epoch % p.val_full_every == 0:
            probs = predict_images(net, val_imgs, p, device, report, "validation images")
            full = segmentation_metrics(np.stack(probs), np.stack([s.mask for s in val_samples]),
                                        np.stack([s.fov for s in val_samples]), THRESHOLD)
            val |= {"val_full_auc": full["auc"], "val_full_f1": full["f1"]}
        return val

    return Loop(batches, n_batches, lambda z, y: loss_fn(z.float(), y), validate)


# --- one cell ----------------------------------------------------------------------------------------------------
def run_segmentation_cell(cell: Cell, data_dir: Path | str | None = None, device: str = "cpu",
                          store: ResultStore | None = None, report: Report = quiet, cache: FeatureCache | None = None,
                          keep_model: bool = False) -> Result:
    """Train and score one segmentation cell. `skipped` (with the reason) when the weights or the dataset cannot
    be had here (DRIVE is never shipped); with a `store`, epochs are checkpointed and the trained model is kept
    whatever `keep_model` says (it is what `medzoo predict` reads). `cache` and `keep_model` are in the signature
    every cell kind shares; a segmentation cell trains the whole network, so it has no frozen features to cache."""
    dev = torch.device(device)
    prov = provenance(dev, cell.protocol.precision)
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
                      reason=reason, provenance=finish(prov, t0))

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
    scorer = scorer_of(cell.dataset)
    outputs = {s: SegOutputs.of(predict_images(out.net, imgs[s], p, dev, report, s.value), samples[s], scorer.spatial)
               for s in (Split.VAL, Split.TEST)}
    model: dict[str, Any] = {"name": cell.model, "arch": spec.name, "family": spec.family, "tag": cell.tag,
                             "source": net.pretrained_cfg.get("source"), "num_params": spec.num_params,
                             "width": spec.feature_dim, "preprocessing": {"mean": list(pre.mean), "std": list(pre.std)}}
    if store is not None:
        meta = {"arch": spec.name, "num_classes": 1, "in_chans": ds.n_channels, "mean": list(pre.mean),
                "std": list(pre.std), "patch_size": p.patch_size, "overlap": p.overlap, "threshold": THRESHOLD,
                "trained_on": cell.dataset, "cell": cell.key, "positive_class": ds.labels["1"]}
        model["checkpoint"] = store.keep_model(cell, out.net, meta)
    data = {"dataset": ds.name, "task": ds.task.value, "fingerprint": ds.fingerprint(None, data_dir),
            "n": {s.value: len(samples[s]) for s in Split}, "license": ds.license, "citation": ds.citation,
            "positive_class": ds.labels["1"], "test_images": [s.id for s in samples[Split.TEST]],
            "second_observer": human_baseline(cell.dataset, samples[Split.TEST])}
    arrays = {k: v for s, o in outputs.items() for k, v in o.arrays(s.value).items()}
    return Result(
        key=cell.key, suite=f"{cell.suite}@{cell.version}", cell=cell.config(), status="ok",
        metrics=score(cell.dataset, outputs),
        training=training_record(out) | {"time_budget_s": p.time_budget_s, "patches_seen": out.epochs_run *
                                   p.patches_per_epoch, "threads": torch.get_num_threads()},
        data=data, model=model, provenance=finish(prov, t0),
    ).with_outputs(arrays, "segmentation-histograms",
                   note=f"uint16 levels q = round(p * {LEVELS}); positive iff q >= {threshold_level(THRESHOLD)}; "
                        f"histograms per image [outside/inside FOV][truth 0/1] (CSR); ids: data.test_images and "
                        f"the validation images in order")
