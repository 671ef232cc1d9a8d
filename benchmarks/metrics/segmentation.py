"""Pixel metrics for binary segmentation (retinal vessels, EM membranes), pooled over all pixels of all images.

Pooling (one confusion matrix and one ROC curve over every pixel inside the field of view) is how the vessel papers
on the leaderboard (Alom et al. 2018, Zhuang 2018) report AUC / Acc / Se / Sp / F1, so the rows compare. A pixel is
predicted positive iff its probability >= `threshold` (as in `benchmarks.metrics`). Ratios with a zero denominator
(e.g. sensitivity with no positive pixel) are NaN, never a silent 0 or 1.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score

from benchmarks.metrics.registry import Metric, register_metric
from zoo import Task
from zoo.extras import require

_SEG = frozenset({Task.SEGMENTATION})
for _metric in (  # computed by the scorers below; auc, acc, sensitivity and specificity are shared with classification
    Metric("f1", True, _SEG), Metric("iou", True, _SEG), Metric("dice", True, _SEG),
    Metric("whole_auc", True, _SEG), Metric("whole_f1", True, _SEG),
    Metric("pixel_error", False, _SEG), Metric("rand_error", False, _SEG),
):
    register_metric(_metric)


def _inputs(prob: ArrayLike, target: ArrayLike, fov: ArrayLike | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(probabilities, bool targets, bool FOV) of one shape, checked: a wrong input raises instead of scoring."""
    p = np.asarray(prob)
    p = p if np.issubdtype(p.dtype, np.floating) else p.astype(np.float64)
    t = np.asarray(target)
    if t.shape != p.shape:
        raise ValueError(f"prob has shape {p.shape} but target {t.shape}: give one probability per pixel")
    if p.size == 0:
        raise ValueError("no pixels to score")
    if t.dtype != bool:
        if not np.isin(t, (0, 1)).all():
            raise ValueError(f"target must be bool or 0/1, got values {np.unique(t)[:6]} (a 0/255 mask: use > 127)")
        t = t.astype(bool)
    lo, hi = float(np.min(p)), float(np.max(p))
    if not (0.0 <= lo and hi <= 1.0):  # also catches NaN
        raise ValueError(f"prob must be probabilities in [0, 1], got [{lo}, {hi}] (logits? apply a sigmoid)")
    m = np.ones(p.shape, bool) if fov is None else np.broadcast_to(np.asarray(fov, dtype=bool), p.shape)
    if not m.any():
        raise ValueError("the FOV mask is empty: no pixels to score")
    return p, t, m


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


def dice(pred: ArrayLike, truth: ArrayLike, empty: float = 1.0) -> float:
    """Dice (= F1) of bool masks of one shape; `empty` when both are empty (1.0 for a validation batch that rightly
    predicts nothing; NaN where a caller would rather show no number)."""
    p, t = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    denom = int(p.sum()) + int(t.sum())
    return 2 * int((p & t).sum()) / denom if denom else empty


def pixel_auc(target: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of 1-D bool `target` against `score` (scikit-learn's, ties counted half); NaN when
    only one class is present, where scikit-learn would raise."""
    if target.all() or not target.any():
        return float("nan")
    return float(roc_auc_score(target, score))


def segmentation_metrics(prob: ArrayLike, target: ArrayLike, fov: ArrayLike | None = None,
                         threshold: float = 0.5) -> dict[str, float]:
    """AUC-ROC, accuracy, sensitivity, specificity, F1 (= Dice) and IoU of the positive class, pooled over the
    pixels inside `fov` (None: every pixel).

    `prob`: positive-class probabilities, any shape, usually (N, H, W); `target`: bool (or 0/1) of that shape;
    `fov`: bool of that shape, or (H, W) for every image. AUC is threshold-free; the rest use prob >= `threshold`.
    Also returns `prevalence` (positive fraction) and `n_pixels` (pixels scored).
    """
    p, t, m = _inputs(prob, target, fov)
    p, t = p[m], t[m]
    pred = p >= threshold
    tp = int(np.count_nonzero(pred & t))
    fp = int(np.count_nonzero(pred)) - tp
    pos = int(np.count_nonzero(t))
    return {"auc": pixel_auc(t, p)} | _confusion_metrics(tp, fp, pos - tp, t.size - pos - fp)


def _confusion_metrics(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """Acc, Se, Sp, F1 (= Dice), IoU, prevalence and pixels scored from one pooled confusion matrix."""
    total = tp + fp + fn + tn
    return {"acc": (tp + tn) / total, "sensitivity": _ratio(tp, tp + fn), "specificity": _ratio(tn, tn + fp),
            "f1": _ratio(2 * tp, 2 * tp + fp + fn), "dice": _ratio(2 * tp, 2 * tp + fp + fn),
            "iou": _ratio(tp, tp + fp + fn), "prevalence": (tp + fn) / total, "n_pixels": float(total)}


def adapted_rand_error(interior_true: np.ndarray, interior_pred: np.ndarray) -> float:
    """scikit-image's adapted Rand error (SNEMI3D definition) of one slice, on 4-connected components of the
    cell-interior masks; pixels that are membrane in the ground truth (label 0) are ignored, as in scikit-image."""
    measure = require("skimage.measure", "the adapted Rand error")
    metrics = require("skimage.metrics", "the adapted Rand error")
    true_labels = measure.label(interior_true, connectivity=1)
    pred_labels = measure.label(interior_pred, connectivity=1)
    if not true_labels.any():
        return float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(metrics.adapted_rand_error(true_labels, pred_labels)[0])


def isbi_metrics(prob: ArrayLike, target: ArrayLike, threshold: float = 0.5) -> dict[str, float]:
    """ISBI-2012 EM scores: Dice and IoU of the *membrane* class, pixel error, adapted Rand error, AUC.

    `prob`: membrane probability (N, H, W) or (H, W); `target`: True = membrane (mask value 0 in the data). A pixel
    is predicted membrane iff prob >= `threshold`, else cell interior (at 0.5: interior probability 1 - prob > 0.5).

    - `pixel_error` = 1 - pixel accuracy at the threshold. This is *not* the challenge's definition (1 - the maximal
      F-score of pixel similarity over thresholds, per http://brainiac2.mit.edu/isbi_challenge/evaluation), so
      compare it with the challenge's numbers only loosely.
    - `rand_error`: per slice, the cell-interior masks of prediction and ground truth are labelled into
      4-connected components (`skimage.measure.label`, connectivity=1) and scored with
      `skimage.metrics.adapted_rand_error` (1 - F-score of the foreground-restricted Rand index: ground-truth
      membrane pixels ignored); the mean over slices. The challenge's (old) Rand error took the maximal F-score over
      thresholds; this one uses the single `threshold`.
    """
    p, t, _ = _inputs(prob, target, None)
    if p.ndim not in (2, 3):
        raise ValueError(f"isbi_metrics needs (N, H, W) or (H, W) slices, got shape {p.shape}")
    p3, t3 = (p[None], t[None]) if p.ndim == 2 else (p, t)
    return membrane_metrics(segmentation_metrics(p, t, None, threshold), p3 >= threshold, t3)


def membrane_metrics(base: dict[str, float], pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """The ISBI-2012 scores from pooled pixel metrics `base` and the (N, H, W) membrane masks (predicted at the
    threshold, and true): see `isbi_metrics`."""
    rand = [adapted_rand_error(~ti, ~pi) for pi, ti in zip(pred, truth, strict=True)]
    return {"dice": base["dice"], "iou": base["iou"], "pixel_error": 1.0 - base["acc"],
            "rand_error": float(np.nanmean(rand)) if not np.isnan(rand).all() else float("nan"), "auc": base["auc"]}


# --- lossless compact outputs: quantised probability histograms ---------------------------------------------------
LEVELS = 65535  # probabilities are stored as uint16 q = round(p * 65535); q / 65535 is the stored probability


def quantise(prob: ArrayLike) -> np.ndarray:
    """Probabilities in [0, 1] → uint16 levels (what a segmentation cell stores and scores)."""
    p = np.asarray(prob, dtype=np.float64)
    if p.size and not (0.0 <= float(p.min()) and float(p.max()) <= 1.0):
        raise ValueError(f"probabilities must lie in [0, 1], got [{p.min()}, {p.max()}]")
    return np.rint(p * LEVELS).astype(np.uint16)


def threshold_level(threshold: float) -> int:
    """The first level predicted positive: q / LEVELS >= threshold."""
    return int(np.ceil(threshold * LEVELS - 1e-9))


def image_histograms(q: np.ndarray, target: np.ndarray, fov: np.ndarray | None) -> np.ndarray:
    """(2, 2, LEVELS + 1) int64 pixel counts of one image's levels: [outside/inside FOV, truth negative/positive]."""
    t = np.asarray(target).astype(bool)
    inside = np.ones(t.shape, bool) if fov is None else np.asarray(fov, dtype=bool)
    out = np.zeros((2, 2, LEVELS + 1), np.int64)
    for i, region in enumerate((~inside, inside)):
        for j, truth in enumerate((~t, t)):
            out[i, j] = np.bincount(q[region & truth], minlength=LEVELS + 1)
    return out


def histogram_auc(neg: np.ndarray, pos: np.ndarray) -> float:
    """ROC AUC from level counts (Mann–Whitney, ties counted half — what scikit-learn computes on the levels),
    in exact integer arithmetic up to one final division; NaN with only one class."""
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    if not n_pos or not n_neg:
        return float("nan")
    below = np.cumsum(neg) - neg
    twice = int(np.sum(pos * (2 * below + neg)))
    return twice / (2 * n_pos * n_neg)


def histogram_metrics(hist: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """`segmentation_metrics` from (2 [truth neg/pos], LEVELS + 1) counts: pooled AUC, Acc, Se, Sp, F1 (= Dice),
    IoU, prevalence and pixels scored, exactly reproducible from stored histograms."""
    neg, pos = hist[0], hist[1]
    if not hist.sum():
        raise ValueError("no pixels to score")
    k = threshold_level(threshold)
    return {"auc": histogram_auc(neg, pos)} | _confusion_metrics(int(pos[k:].sum()), int(neg[k:].sum()),
                                                                 int(pos[:k].sum()), int(neg[:k].sum()))


def f1_threshold(hist: np.ndarray) -> float:
    """The threshold (a stored level / LEVELS) at which a pooled (2 [truth neg/pos], LEVELS + 1) histogram's F1 is
    highest, the lowest such on ties: an operating point chosen on validation images, to apply to the test images
    beside the papers' fixed 0.5. NaN without a positive pixel."""
    neg, pos = hist[0].astype(np.int64), hist[1].astype(np.int64)
    if not pos.sum():
        return float("nan")
    tp = np.cumsum(pos[::-1])[::-1]  # tp[k]: positives predicted positive at level threshold k (levels >= k)
    fp = np.cumsum(neg[::-1])[::-1]
    f1 = 2 * tp / (tp + fp + pos.sum())  # 2TP / (2TP + FP + FN), FN = P - TP
    return int(np.argmax(f1)) / LEVELS


def sparse_histograms(hists: np.ndarray) -> dict[str, np.ndarray]:
    """(n, 2, 2, L) counts → CSR arrays (offsets, levels as uint16, counts as uint32): 6 bytes per level that
    occurs, instead of 2 MB per image for the dense int64 histograms."""
    flat = hists.reshape(-1, hists.shape[-1])
    nz = [np.flatnonzero(row) for row in flat]
    offsets = np.concatenate([[0], np.cumsum([len(i) for i in nz])]).astype(np.int64)
    levels = np.concatenate(nz).astype(np.uint16) if nz else np.zeros(0, np.uint16)
    counts = np.concatenate([row[i] for row, i in zip(flat, nz, strict=True)]) if nz else np.zeros(0, np.int64)
    if counts.size and counts.max() > np.iinfo(np.uint32).max:
        raise ValueError("more than 2**32 pixels in one histogram bin: store int64 counts")
    return {"hist_offsets": offsets, "hist_levels": levels, "hist_counts": counts.astype(np.uint32)}


def dense_histograms(offsets: np.ndarray, levels: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Inverse of `sparse_histograms`: (n, 2, 2, LEVELS + 1) int64."""
    rows = len(offsets) - 1
    out = np.zeros((rows, LEVELS + 1), np.int64)
    for r in range(rows):
        out[r, levels[offsets[r]:offsets[r + 1]]] = counts[offsets[r]:offsets[r + 1]]
    return out.reshape(-1, 2, 2, LEVELS + 1)


def pooled_cis(hists: list[np.ndarray], threshold: float = 0.5, n_resamples: int = 1000, seed: int = 0,
               alpha: float = 0.05) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap CIs of the seeds' mean pooled metrics (`histogram_metrics` keys), resampling seeds and
    test images together: each resample draws seeds and images with replacement and scores every drawn seed on the
    same drawn images, so the CI covers seed-to-seed and image-to-image variation (for one seed: images only).

    `hists`: per seed, (n_images, 2 [truth neg/pos], LEVELS + 1) counts of the scored region, images in one order."""
    if not hists or any(h.shape != hists[0].shape for h in hists):
        raise ValueError("need one (n_images, 2, LEVELS + 1) histogram array per seed, all of one shape")
    rng = np.random.default_rng(seed)
    n = hists[0].shape[0]
    draws: dict[str, list[float]] = {}
    for _ in range(n_resamples):
        seeds = rng.integers(0, len(hists), len(hists))
        weights = np.bincount(rng.integers(0, n, n), minlength=n)
        scored = [histogram_metrics(np.tensordot(weights, hists[s], axes=1), threshold) for s in seeds]
        for key in scored[0]:
            draws.setdefault(key, []).append(float(np.mean([m[key] for m in scored])))
    out = {}
    for key, values in draws.items():
        v = np.asarray(values)
        v = v[~np.isnan(v)]
        out[key] = ((float(np.quantile(v, alpha / 2)), float(np.quantile(v, 1 - alpha / 2))) if v.size
                    else (float("nan"), float("nan")))
    return out
