"""Classification metrics and operating thresholds (bootstrap statistics over them: `benchmarks.metrics.stats`).

`auc` and `acc` are exactly MedMNIST's (`medmnist.evaluator.getAUC` / `getACC`), so our numbers sit beside the
published ones; the other metrics cover what AUC/ACC hide (class imbalance, calibration, ordinal distance).

Inputs are what MedMNIST stores and what a model emits: `y_true` (n, 1) or (n,) integer labels, or (n, L) 0/1 for
multi-label; `y_score` (n, C) probabilities (softmax rows, C=2 for binary; per-label sigmoids for multi-label).
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import balanced_accuracy_score, cohen_kappa_score, f1_score, roc_auc_score, roc_curve

from benchmarks.metrics.registry import METRICS, Metric, register_metric
from zoo import Task

ECE_BINS = 15
_CLASSIFICATION = frozenset({Task.BINARY, Task.MULTICLASS, Task.MULTILABEL, Task.ORDINAL})




# --- input checking --------------------------------------------------------------------------------------------


def _prepare(y_true: ArrayLike, y_score: ArrayLike, task: Task | str) -> tuple[np.ndarray, np.ndarray, Task]:
    """Validate once at the boundary so every metric below can trust shapes: labels become (n,) ints for single-label
    tasks and (n, L) ints for multi-label; scores (n, C) floats."""
    task = Task(task)
    if task not in _CLASSIFICATION:
        raise ValueError(f"metrics are defined for classification tasks, not {task.value!r}")
    y = np.asarray(y_true)
    s = np.asarray(y_score, dtype=float)
    shapes = f"y_true shape {y.shape} and y_score shape {s.shape}"

    def bad(why: str) -> ValueError:
        return ValueError(f"{shapes} do not fit task {task.value!r}: {why}")

    if s.ndim != 2:
        raise bad("y_score must be 2-D (n, C)")
    if y.ndim not in (1, 2) or y.shape[0] != s.shape[0]:
        raise bad("y_true must be (n,), (n, 1) or (n, L) with the same n rows as y_score")
    if s.shape[0] == 0:
        raise bad("no samples")
    if not np.all(np.isfinite(s)):
        raise bad("y_score has non-finite values")
    if y.dtype != bool and (not np.issubdtype(y.dtype, np.number) or np.any(y != np.round(y))):
        raise bad("labels must be integers")
    y = y.astype(np.int64)
    n_cols = s.shape[1]
    if task is Task.MULTILABEL:
        if y.ndim != 2 or y.shape[1] != n_cols:
            raise bad("multi-label needs y_true (n, L) with L == y_score columns")
        if np.any((y != 0) & (y != 1)):
            raise bad("multi-label y_true must be 0/1")
        return y, s, task
    if y.ndim == 2:
        if y.shape[1] != 1:
            raise bad("single-label y_true must be (n,) or (n, 1)")
        y = y[:, 0]
    if task is Task.BINARY and n_cols != 2:
        raise bad("binary needs y_score with 2 columns (softmax over [negative, positive])")
    if n_cols < 2:
        raise bad("y_score needs one column per class")
    if y.min() < 0 or y.max() >= n_cols:
        raise bad(f"labels must lie in [0, {n_cols - 1}]")
    return y, s, task


def _check_metric(metric: str, task: Task, threshold: float | None) -> None:
    if metric not in METRICS or METRICS[metric].fn is None:
        raise ValueError(f"unknown metric {metric!r}; known: {sorted(n for n, m in METRICS.items() if m.fn)}")
    if task not in METRICS[metric].tasks:
        raise ValueError(f"metric {metric!r} is not defined for task {task.value!r}")
    if METRICS[metric].needs_threshold and threshold is None:
        raise ValueError(f"metric {metric!r} needs a threshold (see choose_threshold)")


# --- metrics on validated arrays -------------------------------------------------------------------------------


def _predict(s: np.ndarray, task: Task) -> np.ndarray:
    """MedMNIST's decision rules: binary positive iff score[:, 1] > 0.5, multi-label per label > 0.5, else argmax."""
    if task is Task.BINARY:
        return (s[:, 1] > 0.5).astype(np.int64)
    if task is Task.MULTILABEL:
        return (s > 0.5).astype(np.int64)
    return s.argmax(axis=1)


def _per_class_auc(y: np.ndarray, s: np.ndarray, task: Task) -> np.ndarray:
    if task is Task.BINARY:
        return np.array([roc_auc_score(y, s[:, 1])])
    if task is Task.MULTILABEL:
        return np.array([roc_auc_score(y[:, j], s[:, j]) for j in range(s.shape[1])])
    return np.array([roc_auc_score(y == k, s[:, k]) for k in range(s.shape[1])])


def _auc(y: np.ndarray, s: np.ndarray, task: Task, threshold: float | None) -> float:
    return float(np.mean(_per_class_auc(y, s, task)))


def _acc(y: np.ndarray, s: np.ndarray, task: Task, threshold: float | None) -> float:
    # Multi-label: every label has n rows, so the mean over all cells is the mean of per-label accuracies.
    return float(np.mean(_predict(s, task) == y))


def _balanced_acc(y: np.ndarray, s: np.ndarray, task: Task, threshold: float | None) -> float:
    pred = _predict(s, task)
    if task is Task.MULTILABEL:
        return float(np.mean([balanced_accuracy_score(y[:, j], pred[:, j]) for j in range(y.shape[1])]))
    return float(balanced_accuracy_score(y, pred))


def _macro_f1(y: np.ndarray, s: np.ndarray, task: Task, threshold: float | None) -> float:
    # `labels` fixed to every class so the average is always over C classes, whatever a (small) set happens to
    # contain: a class absent from both labels and predictions counts as F1 = 0 rather than dropping out.
    labels = None if task is Task.MULTILABEL else np.arange(s.shape[1])
    return float(f1_score(y, _predict(s, task), labels=labels, average="macro", zero_division=0.0))


def _ece_top_label(confidence: np.ndarray, correct: np.ndarray) -> float:
    """sum_b |B_b|/n * |acc_b - conf_b| over equal-width bins (lo, hi]; equals |sum_b (correct - conf)| / n."""
    bins = np.digitize(confidence, np.linspace(0.0, 1.0, ECE_BINS + 1)[1:-1], right=True)
    gaps = np.bincount(bins, weights=correct - confidence, minlength=ECE_BINS)
    return float(np.abs(gaps).sum() / confidence.size)


def _ece(y: np.ndarray, s: np.ndarray, task: Task, threshold: float | None) -> float:
    """Top-label ECE. Binary and each multi-label label are binary problems on the positive score, so the
    confidence is max(p, 1 - p) and the prediction the same 0.5 rule that ACC uses."""
    if task is Task.MULTICLASS or task is Task.ORDINAL:
        return _ece_top_label(s.max(axis=1), (s.argmax(axis=1) == y).astype(float))
    p, labels = (s[:, 1:], y[:, None]) if task is Task.BINARY else (s, y)
    return float(np.mean([_ece_top_label(np.maximum(p[:, j], 1 - p[:, j]), ((p[:, j] > 0.5) == labels[:, j]) * 1.0)
                          for j in range(p.shape[1])]))


def _kappa(y: np.ndarray, s: np.ndarray, task: Task, threshold: float | None) -> float:
    # `labels` fixed to 0..C-1: scikit-learn weights by position in the label list, so a class missing from both
    # y and the predictions would otherwise shrink the distances between the classes around it.
    return float(cohen_kappa_score(y, s.argmax(axis=1), labels=np.arange(s.shape[1]), weights="quadratic"))


def _sensitivity(y: np.ndarray, s: np.ndarray, task: Task, threshold: float | None) -> float:
    return float(np.mean(s[y == 1, 1] >= threshold))


def _specificity(y: np.ndarray, s: np.ndarray, task: Task, threshold: float | None) -> float:
    return float(np.mean(s[y == 0, 1] < threshold))


_BOTH = _CLASSIFICATION | {Task.SEGMENTATION}  # also pixel metrics of segmentation (computed by its scorers)
for _metric in (
    Metric("auc", True, _BOTH, _auc),  # the boards' headline (own columns: mean ± std and its CI)
    Metric("acc", True, _BOTH, _acc),
    Metric("balanced_acc", True, _CLASSIFICATION, _balanced_acc, column="bal. ACC"),
    Metric("macro_f1", True, _CLASSIFICATION, _macro_f1, column="macro-F1"),
    Metric("ece", False, _CLASSIFICATION, _ece, column="ECE"),
    Metric("kappa", True, frozenset({Task.ORDINAL}), _kappa),
    Metric("sensitivity", True, frozenset({Task.BINARY, Task.SEGMENTATION}), _sensitivity, needs_threshold=True),
    Metric("specificity", True, frozenset({Task.BINARY, Task.SEGMENTATION}), _specificity, needs_threshold=True),
):
    register_metric(_metric)


# --- public API ------------------------------------------------------------------------------------------------


def evaluate(y_true: ArrayLike, y_score: ArrayLike, task: Task | str,
             threshold: float | None = None, only: Collection[str] | None = None) -> dict[str, float]:
    """Every metric defined for `task`. `auc`/`acc` are MedMNIST's; `acc`, `balanced_acc`, `macro_f1` and `ece`
    always use MedMNIST's 0.5 / argmax rule so they stay comparable across papers. `threshold` (binary only, chosen
    on validation by `choose_threshold`) adds `sensitivity`/`specificity` at score[:, 1] >= threshold, and records
    itself. An AUC that is undefined (a class absent from y_true) is nan, as in scikit-learn. `only` names the
    metrics wanted (a training loop's per-epoch validation needs its selection metric, not all of them)."""
    y, s, task = _prepare(y_true, y_score, task)
    if threshold is not None and task is not Task.BINARY:
        raise ValueError(f"threshold applies to binary tasks only, not {task.value!r}")
    out = {name: m.fn(y, s, task, threshold) for name, m in METRICS.items()
           if m.fn is not None and task in m.tasks and (threshold is not None or not m.needs_threshold)
           and (only is None or name in only)}
    if threshold is not None:
        out["threshold"] = float(threshold)
    return out


def per_class_auc(y_true: ArrayLike, y_score: ArrayLike, task: Task | str) -> list[float]:
    """One-vs-rest AUC per class (multi-class, ordinal) or per label (multi-label); their mean is `auc`. Binary gives
    one value, the AUC of the positive class: the negative class's AUC is the same number for softmax scores."""
    y, s, task = _prepare(y_true, y_score, task)
    return [float(a) for a in _per_class_auc(y, s, task)]


def choose_threshold(y_true_val: ArrayLike, y_score_val: ArrayLike) -> float:
    """The binary operating point maximising Youden's J = sensitivity + specificity - 1 on the ROC curve of
    score[:, 1]. Choose it on VALIDATION and apply it to test: picking it on test inflates both numbers. The value
    is a score from the data, positive iff score >= threshold; among ties the highest threshold wins."""
    y, s, _ = _prepare(y_true_val, y_score_val, Task.BINARY)
    if np.unique(y).size < 2:
        raise ValueError("choose_threshold needs both classes in y_true_val")
    fpr, tpr, thresholds = roc_curve(y, s[:, 1], drop_intermediate=False)
    # the curve starts at threshold +inf (nothing positive): a model no better than chance on validation would pick
    # it, and inf is no score from the data (nor valid JSON); the highest real score stands in for it
    return float(thresholds[1 + np.argmax(tpr[1:] - fpr[1:])])
