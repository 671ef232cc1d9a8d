"""Statistics over a test set: class-stratified bootstrap confidence intervals and paired bootstrap tests (one model
against another on the same resampled test rows, also over seeds). Seeded, so a stored CI re-computes exactly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from benchmarks.metrics.classification import _check_metric, _prepare
from benchmarks.metrics.registry import METRICS, MetricFn
from zoo import Task


def _draw_counts(idx: np.ndarray) -> np.ndarray:
    """(B, n) index rows -> (B, n) float counts of how often each sample was drawn, without a Python loop."""
    n_resamples, n = idx.shape
    counts = np.bincount((idx + n * np.arange(n_resamples)[:, None]).ravel(), minlength=n_resamples * n)
    return counts.reshape(n_resamples, n).astype(float)


def _resample(y: np.ndarray, task: Task, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, n) row indices. Single-label tasks resample within each class, so every class keeps its count
    and a rare class is never absent (its AUC stays defined); the CI is then conditional on the class mix, which is
    fixed by the test split anyway. Multi-label rows cannot be stratified on all labels at once, so rows are drawn
    plainly and a resample in which any label column is constant (all 0 or all 1) is redrawn."""
    n = y.shape[0]
    if task is not Task.MULTILABEL:
        members = [np.flatnonzero(y == k) for k in np.unique(y)]
        return np.concatenate([m[rng.integers(0, m.size, size=(n_resamples, m.size))] for m in members], axis=1)
    positives = y.sum(axis=0)
    if np.any((positives == 0) | (positives == n)):
        raise ValueError("a multi-label column of y_true is constant: no resample can make it vary")
    idx = rng.integers(0, n, size=(n_resamples, n))
    while True:
        counts = _draw_counts(idx) @ y  # (B, L) positives per label
        redraw = np.flatnonzero(np.any((counts == 0) | (counts == n), axis=1))
        if redraw.size == 0:
            return idx
        idx[redraw] = rng.integers(0, n, size=(redraw.size, n))


def _weighted_auc(positive: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC for each row of `weights` (B, n) = how often each sample was drawn: the Mann-Whitney statistic with
    ties counted 1/2, which is what roc_auc_score computes, in one pass over the sorted scores for all rows."""
    order = np.argsort(score, kind="stable")
    sorted_score = score[order]
    starts = np.flatnonzero(np.r_[True, sorted_score[1:] != sorted_score[:-1]])
    w = weights[:, order]
    pos_w = w * positive[order]
    pos = np.add.reduceat(pos_w, starts, axis=1)  # (B, tie groups)
    neg = np.add.reduceat(w - pos_w, starts, axis=1)
    neg_below = np.cumsum(neg, axis=1) - neg
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos * (neg_below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))


def _fn(metric: str) -> MetricFn:
    fn = METRICS[metric].fn
    assert fn is not None  # `_check_metric` let only computable metrics through
    return fn


def _metric_over(y: np.ndarray, s: np.ndarray, task: Task, metric: str, idx: np.ndarray,
                 threshold: float | None) -> np.ndarray:
    """`metric` on each resample (row of `idx`). AUC, the usual headline, is vectorised through draw counts; the
    others loop, which is fast enough for 1000 resamples."""
    if metric != "auc":
        return np.array([_fn(metric)(y[i], s[i], task, threshold) for i in idx])
    weights = _draw_counts(idx)
    if task is Task.BINARY:
        columns = [(y == 1, s[:, 1])]
    elif task is Task.MULTILABEL:
        columns = [(y[:, j] == 1, s[:, j]) for j in range(s.shape[1])]
    else:
        columns = [(y == k, s[:, k]) for k in range(s.shape[1])]
    return np.mean([_weighted_auc(p, sc, weights) for p, sc in columns], axis=0)


def _check_resampling(n_resamples: int, alpha: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")


def bootstrap_ci(y_true: ArrayLike, y_score: ArrayLike, task: Task | str, metric: str = "auc", n_resamples: int = 1000,
                 seed: int = 0, alpha: float = 0.05, threshold: float | None = None) -> tuple[float, float]:
    """Percentile (1 - alpha) confidence interval of `metric` on a test set, from class-stratified resamples
    (see `_resample`). Seeded, so a result file can be reproduced exactly."""
    y, s, task = _prepare(y_true, y_score, task)
    _check_metric(metric, task, threshold)
    _check_resampling(n_resamples, alpha)
    idx = _resample(y, task, n_resamples, np.random.default_rng(seed))
    low, high = np.quantile(_metric_over(y, s, task, metric, idx, threshold), [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


@dataclass(frozen=True)
class SeedsMean:
    """A configuration's metric over its seeds: the mean, its CI, and the sd over seeds (None for one run: a single
    run has no spread to show)."""

    metric: str
    mean: float
    ci_low: float
    ci_high: float
    seeds: int
    std: float | None


def seeds_mean_ci(y_true: ArrayLike, scores: list[ArrayLike], task: Task | str, metric: str = "auc",
                  n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05) -> SeedsMean:
    """Percentile CI of the mean over seeds (`scores[i]` = seed i's scores of the same test set). Each resample
    draws seeds with replacement and test rows (the same rows for every seed), so the CI covers both seed-to-seed
    and test-set variation; with one seed it is the test-set bootstrap."""
    if not scores:
        raise ValueError("need the scores of at least one seed")
    runs = [_prepare(y_true, s, task) for s in scores]
    y, task = runs[0][0], runs[0][2]
    _check_metric(metric, task, None)
    _check_resampling(n_resamples, alpha)
    values = [_fn(metric)(y, s, task, None) for _, s, _ in runs]
    rng = np.random.default_rng(seed)
    idx = _resample(y, task, n_resamples, rng)
    per_seed = np.stack([_metric_over(y, s, task, metric, idx, None) for _, s, _ in runs])  # (seeds, resamples)
    pick = rng.integers(0, len(runs), size=(n_resamples, len(runs)))
    means = per_seed[pick, np.arange(n_resamples)[:, None]].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return SeedsMean(metric, float(np.mean(values)), float(low), float(high), len(runs),
                     float(np.std(values, ddof=1)) if len(runs) > 1 else None)


def holm(p_values: ArrayLike) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control for many pairwise tests, no independence
    assumed): the i-th smallest p times (m - i), made monotone, capped at 1. Reject where adjusted p <= alpha."""
    p = np.asarray(p_values, dtype=float).ravel()
    if p.size and (np.any(~np.isfinite(p)) or p.min() < 0 or p.max() > 1):
        raise ValueError(f"p-values must lie in [0, 1], got {p}")
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((p.size - np.arange(p.size)) * p[order]))
    out = np.empty_like(p)
    out[order] = adjusted
    return out


def ranks(tests: dict[tuple[int, int], PairedBootstrap], n: int, higher_is_better: bool = True,
          alpha: float = 0.05) -> list[int]:
    """Rank of each of `n` rows = 1 + the number of rows significantly better than it, from paired tests of row i
    against row j (`tests[i, j]`, delta = i − j; their `p_normal`) with Holm's correction over all the tests given
    (one family: a dataset's rows). Rows no row beats share rank 1; significance is not transitive, so equal ranks
    lower down are counts, not ties."""
    pairs = list(tests)
    adjusted = holm([tests[k].p_normal for k in pairs])
    beaten = [0] * n
    for (i, j), p in zip(pairs, adjusted):
        if p <= alpha and tests[i, j].delta != 0:
            i_better = (tests[i, j].delta > 0) == higher_is_better
            beaten[j if i_better else i] += 1
    return [1 + b for b in beaten]


@dataclass(frozen=True)
class PairedBootstrap:
    """Model A minus model B on one test set. `delta` is on the full set; the CI and p-value come from resamples
    that apply the same rows to both models, so sample difficulty cancels out of the difference."""

    metric: str
    delta: float
    ci_low: float
    ci_high: float
    p_value: float  # percentile: 2 x the smaller tail, (k + 1) / (B + 1), so never below 2 / (B + 1)
    se: float  # sd of the resampled deltas

    @property
    def significant(self) -> bool:
        """The CI excludes 0."""
        return self.ci_low > 0 or self.ci_high < 0

    @property
    def p_normal(self) -> float:
        """Two-sided p of delta / se against a normal: not floored by the number of resamples, which is what a
        correction over many pairs needs (1000 resamples cannot show p < 0.002; Holm over 36 pairs asks for 0.0014)."""
        from scipy.stats import norm

        if self.se > 0:
            return float(2 * norm.sf(abs(self.delta) / self.se))
        return 1.0 if self.delta == 0 else 0.0


def _paired(metric: str, delta: float, deltas: np.ndarray, alpha: float) -> PairedBootstrap:
    low, high = np.quantile(deltas, [alpha / 2, 1 - alpha / 2])
    tail = min(np.count_nonzero(deltas <= 0), np.count_nonzero(deltas >= 0))
    return PairedBootstrap(metric, float(delta), float(low), float(high),
                           float(min(1.0, 2 * (tail + 1) / (deltas.size + 1))), float(np.std(deltas, ddof=1))
                           if deltas.size > 1 else float("nan"))


def paired_bootstrap(y_true: ArrayLike, score_a: ArrayLike, score_b: ArrayLike, task: Task | str, metric: str = "auc",
                     n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05,
                     threshold: float | None = None) -> PairedBootstrap:
    """Is A better than B on `metric`? Two-sided p-value = 2 x the smaller fraction of resampled deltas on either
    side of 0, with the +1 correction ((k + 1) / (B + 1)) so a finite bootstrap never claims p = 0; capped at 1.
    The sign of `delta` is A - B whatever the metric's direction (see METRICS)."""
    y, s_a, task = _prepare(y_true, score_a, task)
    _, s_b, _ = _prepare(y_true, score_b, task)
    if s_a.shape != s_b.shape:
        raise ValueError(f"score_a shape {s_a.shape} and score_b shape {s_b.shape} differ")
    _check_metric(metric, task, threshold)
    _check_resampling(n_resamples, alpha)
    fn = _fn(metric)
    delta = fn(y, s_a, task, threshold) - fn(y, s_b, task, threshold)
    idx = _resample(y, task, n_resamples, np.random.default_rng(seed))
    deltas = _metric_over(y, s_a, task, metric, idx, threshold) - _metric_over(y, s_b, task, metric, idx, threshold)
    return _paired(metric, delta, deltas, alpha)


def paired_bootstrap_seeds(y_true: ArrayLike, scores_a: list[ArrayLike], scores_b: list[ArrayLike], task: Task | str,
                           metric: str = "auc", n_resamples: int = 1000, seed: int = 0,
                           alpha: float = 0.05) -> PairedBootstrap:
    """`paired_bootstrap` for rows run with several seeds: delta = mean over A's seeds − mean over B's seeds; each
    resample draws the same test rows for every run of both, so the CI covers test-set sampling of the seed-mean
    difference (seed-to-seed spread is reported separately, as std)."""
    if not scores_a or not scores_b:
        raise ValueError("each side needs the scores of at least one run")
    _check_metric(metric, Task(task), None)
    _check_resampling(n_resamples, alpha)
    prepared = [[_prepare(y_true, s, task) for s in side] for side in (scores_a, scores_b)]
    y, _, task = prepared[0][0]
    fn = _fn(metric)
    delta = (np.mean([fn(y, s, task, None) for _, s, _ in prepared[0]])
             - np.mean([fn(y, s, task, None) for _, s, _ in prepared[1]]))
    idx = _resample(y, task, n_resamples, np.random.default_rng(seed))
    a, b = (np.mean([_metric_over(y, s, task, metric, idx, None) for _, s, _ in side], axis=0) for side in prepared)
    return _paired(metric, float(delta), a - b, alpha)


def paired_seeds_hierarchical(y_true: ArrayLike, scores_a: list[ArrayLike], scores_b: list[ArrayLike],
                              task: Task | str, metric: str = "auc", n_resamples: int = 1000, seed: int = 0,
                              alpha: float = 0.05) -> PairedBootstrap:
    """Runs paired by seed (`scores_a[i]` and `scores_b[i]` share seed i): delta = the mean over seeds of A_i − B_i;
    each resample draws seeds with replacement and test rows (the same rows for every run), so the CI covers
    seed-to-seed as well as test-set variation of the paired difference."""
    if not scores_a or len(scores_a) != len(scores_b):
        raise ValueError(f"need the same number (>= 1) of runs on each side, got {len(scores_a)} and {len(scores_b)}")
    _check_metric(metric, Task(task), None)
    _check_resampling(n_resamples, alpha)
    pairs = [(_prepare(y_true, a, task), _prepare(y_true, b, task)) for a, b in zip(scores_a, scores_b)]
    y, task = pairs[0][0][0], pairs[0][0][2]
    fn = _fn(metric)
    delta = float(np.mean([fn(y, a[1], task, None) - fn(y, b[1], task, None) for a, b in pairs]))
    rng = np.random.default_rng(seed)
    idx = _resample(y, task, n_resamples, rng)
    per_seed = np.stack([_metric_over(y, a[1], task, metric, idx, None) - _metric_over(y, b[1], task, metric, idx, None)
                         for a, b in pairs])  # (seeds, resamples)
    pick = rng.integers(0, len(pairs), size=(n_resamples, len(pairs)))
    return _paired(metric, delta, per_seed[pick, np.arange(n_resamples)[:, None]].mean(axis=1), alpha)


@dataclass(frozen=True)
class Reordering:
    """How two scorings of the same binary test set differ in the order of (positive, negative) pairs — the only
    thing AUC sees. `delta` = AUC(b) − AUC(a) = the mean over pairs of the change d ∈ {0, ±½, ±1}; `null_sd` is the
    sd of that mean if each changed pair had changed direction by a coin flip (sqrt(Σd²) / pairs), so |delta| /
    null_sd tells a shift in one direction from rounding noise, and `null_sd` is the smallest |ΔAUC| that a
    perturbation re-ordering this many pairs can be expected to show on this test set."""

    pairs: int
    reordered: int
    delta: float
    null_sd: float


def reordering(y_true: ArrayLike, scores_a: ArrayLike, scores_b: ArrayLike) -> Reordering:
    """`Reordering` of binary scores `scores_b` against `scores_a`, each (N, 2) as the classification metrics take."""
    y, a, _ = _prepare(y_true, scores_a, Task.BINARY)
    _, b, _ = _prepare(y_true, scores_b, Task.BINARY)
    pos, neg = y == 1, y == 0
    n = int(pos.sum()) * int(neg.sum())
    if n == 0:
        raise ValueError("reordering needs both classes in y_true")
    total, changed, sq = 0.0, 0, 0.0
    for rows in np.array_split(np.flatnonzero(pos), max(1, int(pos.sum()) // 256)):  # bounded memory
        d = (np.sign(b[rows, 1:] - b[neg, 1]) - np.sign(a[rows, 1:] - a[neg, 1])) / 2
        total, changed, sq = total + float(d.sum()), changed + int(np.count_nonzero(d)), sq + float((d * d).sum())
    return Reordering(n, changed, total / n, float(np.sqrt(sq)) / n)
