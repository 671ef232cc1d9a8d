"""Metrics: MedMNIST equivalence, hand-computed cases, input checking and the bootstrap."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from medmnist.evaluator import getACC, getAUC
from sklearn.metrics import roc_auc_score

from benchmarks.data._spec import Task
from benchmarks.metrics import (
    METRICS,
    PairedBootstrap,
    bootstrap_ci,
    choose_threshold,
    evaluate,
    paired_bootstrap,
    holm,
    per_class_auc,
    ranks,
    reordering,
    seeds_mean_ci,
)
from benchmarks.metrics.classification import _prepare
from benchmarks.metrics.stats import _metric_over, _resample

# Hand-made cases leave some class out of y_true: its AUC is nan (and scikit-learn says so), which is not under test.
pytestmark = pytest.mark.filterwarnings("ignore:Only one class is present", "ignore:y_pred contains classes")

MEDMNIST_TASK = {Task.BINARY: "binary-class", Task.MULTICLASS: "multi-class",
                 Task.MULTILABEL: "multi-label, binary-class", Task.ORDINAL: "ordinal-regression"}
N_COLUMNS = {Task.BINARY: 2, Task.MULTICLASS: 9, Task.MULTILABEL: 14, Task.ORDINAL: 5}


def random_case(task: Task, n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels as MedMNIST stores them ((n, 1) or (n, L)) and probability scores as a model emits them."""
    rng = np.random.default_rng(seed)
    c = N_COLUMNS[task]
    if task is Task.MULTILABEL:
        y = (rng.random((n, c)) < 0.3).astype(np.uint8)
        return y, 0.7 * rng.random((n, c)) + 0.3 * y * rng.random((n, c))
    y = np.concatenate([np.arange(c), rng.integers(0, c, n - c)])[:, None]  # every class present
    s = rng.random((n, c)) + 0.8 * np.eye(c)[y[:, 0]] * rng.random((n, 1))  # informative, not perfect
    return y, s / s.sum(axis=1, keepdims=True)


# --- MedMNIST equivalence --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("task", list(MEDMNIST_TASK))
def test_auc_acc_match_medmnist(task: Task, seed: int) -> None:
    y, s = random_case(task, seed=seed)
    m = evaluate(y, s, task)
    assert m["auc"] == pytest.approx(getAUC(y, s, MEDMNIST_TASK[task]), abs=1e-9)
    assert m["acc"] == pytest.approx(getACC(y, s, MEDMNIST_TASK[task]), abs=1e-9)
    assert np.mean(per_class_auc(y, s, task)) == pytest.approx(m["auc"], abs=1e-12)


@pytest.mark.parametrize("task", list(MEDMNIST_TASK))
def test_evaluate_returns_the_metrics_defined_for_the_task(task: Task) -> None:
    y, s = random_case(task)
    expected = {name for name, m in METRICS.items() if task in m.tasks and m.fn and not m.needs_threshold}
    assert set(evaluate(y, s, task)) == expected
    assert all(math.isfinite(v) for v in evaluate(y, s, task).values())
    assert evaluate(y, s, task, only=("auc",)) == {"auc": evaluate(y, s, task)["auc"]}  # what validation asks for


def test_per_class_auc_lengths() -> None:
    for task, c in N_COLUMNS.items():
        y, s = random_case(task)
        assert len(per_class_auc(y, s, task)) == (1 if task is Task.BINARY else c)


# --- hand-computed cases ---------------------------------------------------------------------------------------


def binary_scores(p1: list[float]) -> np.ndarray:
    p = np.asarray(p1)
    return np.stack([1 - p, p], axis=1)


def test_ece_binary_by_hand() -> None:
    # p=0.9 (conf 0.9, 3 of 4 right) and p=0.25 (predicted 0, conf 0.75, 1 of 2 right):
    # 4/6 * |0.75 - 0.9| + 2/6 * |0.5 - 0.75| = 0.1 + 1/12.
    y = np.array([1, 1, 1, 0, 0, 1])
    s = binary_scores([0.9, 0.9, 0.9, 0.9, 0.25, 0.25])
    assert evaluate(y, s, "binary")["ece"] == pytest.approx(0.1 + 1 / 12, abs=1e-12)


def test_ece_zero_when_calibrated_and_multiclass_by_hand() -> None:
    assert evaluate([1, 1, 1, 0], binary_scores([0.75] * 4), "binary")["ece"] == pytest.approx(0.0, abs=1e-12)
    # top-label confidences 0.6, 0.6 (one right) and 0.9 (right): bin of 0.6 gives 2/3 * |0.5 - 0.6|,
    # bin of 0.9 gives 1/3 * |1 - 0.9|
    s = np.array([[0.6, 0.3, 0.1], [0.2, 0.6, 0.2], [0.05, 0.05, 0.9]])
    assert evaluate([0, 0, 2], s, "multiclass")["ece"] == pytest.approx(0.1 * 2 / 3 + 0.1 / 3, abs=1e-12)


def test_ece_multilabel_averages_per_label_binary_problems() -> None:
    y = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    s = np.array([[0.75, 0.9], [0.75, 0.9], [0.75, 0.9], [0.75, 0.9]])
    # label 0: conf 0.75, 2/4 right -> 0.25; label 1: conf 0.9, 2/4 right -> 0.4
    assert evaluate(y, s, Task.MULTILABEL)["ece"] == pytest.approx((0.25 + 0.4) / 2, abs=1e-12)


def one_hot_scores(pred: list[int], c: int) -> np.ndarray:
    return 0.1 / c + 0.9 * np.eye(c)[pred]


def test_kappa_quadratic_by_hand() -> None:
    # observed weighted disagreement 2 * (1/4) / 4 = 1/8, expected 11/32 -> kappa = 1 - 4/11
    assert evaluate([0, 1, 2, 2], one_hot_scores([0, 2, 2, 1], 3), "ordinal")["kappa"] == pytest.approx(7 / 11)


def test_kappa_uses_class_values_not_positions() -> None:
    # classes {0, 1, 3} of 4: distances 1, 2, 3 (not 1, 1, 2 as scikit-learn would use without `labels`) -> 11/27
    assert evaluate([0, 1, 3, 3], one_hot_scores([0, 3, 3, 1], 4), "ordinal")["kappa"] == pytest.approx(11 / 27)
    assert "kappa" not in evaluate([0, 1, 3, 3], one_hot_scores([0, 3, 3, 1], 4), "multiclass")


@pytest.mark.parametrize(("threshold", "sens", "spec"), [(0.5, 2 / 3, 1.0), (0.35, 2 / 3, 0.5), (0.6, 2 / 3, 1.0),
                                                         (0.61, 1 / 3, 1.0), (0.05, 1.0, 0.0)])
def test_sensitivity_specificity_by_hand(threshold: float, sens: float, spec: float) -> None:
    y = np.array([[1], [1], [1], [0], [0]])
    m = evaluate(y, binary_scores([0.9, 0.6, 0.3, 0.4, 0.1]), "binary", threshold=threshold)
    assert (m["sensitivity"], m["specificity"], m["threshold"]) == pytest.approx((sens, spec, threshold))


def test_threshold_only_for_binary_and_metrics_without_it() -> None:
    y, s = random_case(Task.BINARY)
    assert "sensitivity" not in evaluate(y, s, Task.BINARY)
    y, s = random_case(Task.MULTICLASS)
    with pytest.raises(ValueError, match="binary"):
        evaluate(y, s, Task.MULTICLASS, threshold=0.5)


def test_balanced_acc_and_macro_f1_by_hand() -> None:
    y = [0, 0, 0, 0, 1, 1, 2, 2]
    s = one_hot_scores([0, 0, 0, 1, 1, 1, 2, 0], 3)
    m = evaluate(y, s, "multiclass")
    assert m["balanced_acc"] == pytest.approx((3 / 4 + 1 + 1 / 2) / 3)
    # F1 per class: 2TP / (2TP + FP + FN) = 6/8, 4/5, 2/3
    assert m["macro_f1"] == pytest.approx((6 / 8 + 4 / 5 + 2 / 3) / 3)
    assert m["acc"] == pytest.approx(6 / 8)


def test_macro_f1_averages_over_every_class() -> None:
    m = evaluate([0, 0, 1, 2], one_hot_scores([0, 0, 1, 1], 3), "multiclass")  # class 2 never predicted
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    m = evaluate([0, 1], one_hot_scores([0, 1], 3), "multiclass")  # class 2 absent from labels and predictions
    assert m["macro_f1"] == pytest.approx(2 / 3)


def test_multilabel_balanced_acc_and_macro_f1_by_hand() -> None:
    y = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    s = np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.2], [0.3, 0.7]])  # label 0: TP FN TN TN, label 1: TN TP FN FP
    m = evaluate(y, s, "multilabel")
    assert m["balanced_acc"] == pytest.approx(((1 / 2 + 1) / 2 + (1 / 2 + 1 / 2) / 2) / 2)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert m["acc"] == pytest.approx((3 / 4 + 2 / 4) / 2)


def test_choose_threshold_youden() -> None:
    y = np.array([0, 0, 1, 1])
    s = binary_scores([0.1, 0.3, 0.35, 0.8])
    t = choose_threshold(y, s)
    assert t == pytest.approx(0.35)
    m = evaluate(y, s, "binary", threshold=t)
    assert (m["sensitivity"], m["specificity"]) == (1.0, 1.0)
    # J = 1/2 at 0.8 and at 0.35 (both corners); the higher threshold wins the tie
    assert choose_threshold(y, binary_scores([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.8)


def test_choose_threshold_of_a_chance_model_is_a_real_score() -> None:
    """Validation scores that rank every negative above every positive: no threshold beats J = 0, which "nothing
    positive" (ROC threshold +inf) and "everything positive" share; the real score wins, so results stay finite
    (valid JSON)."""
    y = np.array([0, 0, 1, 1])
    s = binary_scores([0.9, 0.8, 0.2, 0.1])
    t = choose_threshold(y, s)
    assert t == pytest.approx(0.1) and np.isfinite(evaluate(y, s, "binary", threshold=t)["threshold"])


# --- input checking --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", [Task.MULTICLASS, "multiclass"])
def test_task_accepts_enum_or_string(task: Task | str) -> None:
    y, s = random_case(Task.MULTICLASS)
    assert evaluate(y, s, task) == evaluate(y, s, Task.MULTICLASS)


@pytest.mark.parametrize(("task", "y_shape", "s_shape"), [
    (Task.BINARY, (10, 1), (9, 2)),  # rows differ
    (Task.BINARY, (10, 1), (10, 3)),  # binary needs 2 columns
    (Task.BINARY, (10, 1), (10,)),  # not 2-D
    (Task.MULTICLASS, (10, 2), (10, 9)),  # single-label y_true with 2 columns
    (Task.MULTICLASS, (10, 1, 1), (10, 9)),  # 3-D labels
    (Task.MULTILABEL, (10, 14), (10, 13)),  # label count differs
    (Task.MULTILABEL, (10,), (10, 14)),  # multi-label needs (n, L)
])
def test_shape_mismatch_names_both_shapes(task: Task, y_shape: tuple[int, ...], s_shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError) as err:
        evaluate(np.zeros(y_shape, dtype=int), np.full(s_shape, 0.5), task)
    assert str(y_shape) in str(err.value) and str(s_shape) in str(err.value)


@pytest.mark.parametrize(("y", "task", "words"), [
    ([0, 1, 9], "multiclass", "labels must lie"),
    ([0, 0.5, 1], "multiclass", "integers"),
    (["a", "b", "c"], "multiclass", "integers"),
])
def test_bad_labels(y: list[object], task: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        evaluate(y, np.full((3, 3), 1 / 3), task)


def test_bad_task_and_metric() -> None:
    y, s = random_case(Task.BINARY)
    for task in ("segmentation", "regression"):
        with pytest.raises(ValueError):
            evaluate(y, s, task)
    with pytest.raises(ValueError, match="kappa"):
        bootstrap_ci(y, s, Task.BINARY, metric="kappa")
    with pytest.raises(ValueError, match="threshold"):
        bootstrap_ci(y, s, Task.BINARY, metric="sensitivity")


def test_metrics_table_directions() -> None:
    assert not METRICS["ece"].higher_is_better
    assert METRICS["auc"].higher_is_better and METRICS["kappa"].tasks == frozenset({Task.ORDINAL})
    assert all(name == info.name for name, info in METRICS.items())


# --- bootstrap -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", list(MEDMNIST_TASK))
def test_vectorised_auc_equals_sklearn_on_resamples(task: Task) -> None:
    y, s = random_case(task, n=120)
    y, s, task = _prepare(y, s, task)
    idx = _resample(y, task, 5, np.random.default_rng(3))
    expected = [evaluate(y[i], s[i], task)["auc"] for i in idx]
    np.testing.assert_allclose(_metric_over(y, s, task, "auc", idx, None), expected, rtol=0, atol=1e-12)


def test_vectorised_auc_handles_ties() -> None:
    y = np.array([0, 1, 0, 1, 1, 0, 1, 0])
    s = binary_scores([0.5, 0.5, 0.2, 0.7, 0.2, 0.7, 0.5, 0.1])
    idx = np.array([[0, 1, 2, 3, 4, 5, 6, 7], [1, 1, 0, 0, 4, 5, 6, 6]])
    expected = [roc_auc_score(y[i], s[i, 1]) for i in idx]
    np.testing.assert_allclose(_metric_over(y, s, Task.BINARY, "auc", idx, None), expected, atol=1e-12)


@pytest.mark.parametrize(("task", "metric"), [(Task.BINARY, "auc"), (Task.MULTICLASS, "auc"), (Task.MULTILABEL, "auc"),
                                              (Task.ORDINAL, "kappa"), (Task.MULTICLASS, "ece")])
def test_bootstrap_ci_contains_estimate_and_is_seeded(task: Task, metric: str) -> None:
    y, s = random_case(task, n=200)
    n = 1000 if metric == "auc" else 200
    low, high = bootstrap_ci(y, s, task, metric=metric, n_resamples=n, seed=7)
    assert low < evaluate(y, s, task)[metric] < high
    assert bootstrap_ci(y, s, task, metric=metric, n_resamples=n, seed=7) == (low, high)
    assert bootstrap_ci(y, s, task, metric=metric, n_resamples=n, seed=8) != (low, high)
    wide = bootstrap_ci(y, s, task, metric=metric, n_resamples=n, seed=7, alpha=0.01)
    assert wide[0] <= low and high <= wide[1]


def test_bootstrap_with_threshold_metric() -> None:
    y, s = random_case(Task.BINARY, n=200)
    low, high = bootstrap_ci(y, s, Task.BINARY, metric="sensitivity", n_resamples=200, threshold=0.5)
    assert low <= evaluate(y, s, Task.BINARY, threshold=0.5)["sensitivity"] <= high


def test_stratified_resampling_keeps_a_rare_class() -> None:
    rng = np.random.default_rng(0)
    y = np.array([2, 2] + [0] * 120 + [1] * 78)
    s = rng.dirichlet(np.ones(3), size=200)
    idx = _resample(y, Task.MULTICLASS, 1000, np.random.default_rng(0))
    counts = np.stack([(y[idx] == k).sum(axis=1) for k in range(3)], axis=1)
    assert (counts == [120, 78, 2]).all()
    # plain resampling would lose class 2 in ~13% of draws and make its AUC undefined
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low, high = bootstrap_ci(y[:, None], s, "multiclass", n_resamples=1000)
    assert math.isfinite(low) and math.isfinite(high)


def test_multilabel_resampling_redraws_constant_columns() -> None:
    y, s = random_case(Task.MULTILABEL, n=100)
    y[:, 0] = 0
    y[:2, 0] = 1  # 2 positives in 100 rows: absent from ~13% of plain resamples
    idx = _resample(y, Task.MULTILABEL, 1000, np.random.default_rng(0))
    positives = y[idx].sum(axis=1)
    assert ((positives > 0) & (positives < 100)).all()
    assert all(math.isfinite(v) for v in bootstrap_ci(y, s, Task.MULTILABEL, n_resamples=300))
    y[:, 0] = 0
    with pytest.raises(ValueError, match="constant"):
        bootstrap_ci(y, s, Task.MULTILABEL, n_resamples=10)


def test_paired_bootstrap_identical_models() -> None:
    y, s = random_case(Task.MULTICLASS, n=200)
    r = paired_bootstrap(y, s, s.copy(), Task.MULTICLASS)
    assert isinstance(r, PairedBootstrap)
    assert (r.delta, r.ci_low, r.ci_high, r.p_value, r.significant) == (0.0, 0.0, 0.0, 1.0, False)


@pytest.mark.parametrize("task", [Task.BINARY, Task.MULTILABEL])
def test_paired_bootstrap_clearly_better_model(task: Task) -> None:
    y, good = random_case(task, n=300, seed=1)
    noise = np.random.default_rng(5).random(good.shape)
    bad = 0.3 * good + 0.7 * noise
    if task is not Task.MULTILABEL:
        bad /= bad.sum(axis=1, keepdims=True)
    r = paired_bootstrap(y, good, bad, task, seed=1)
    assert r.delta > 0 and r.significant and r.ci_low > 0 and r.p_value < 0.01
    assert r.delta == pytest.approx(evaluate(y, good, task)["auc"] - evaluate(y, bad, task)["auc"])
    flipped = paired_bootstrap(y, bad, good, task, seed=1)
    assert flipped.delta == pytest.approx(-r.delta) and flipped.significant and flipped.ci_high < 0


def test_paired_bootstrap_rejects_different_score_shapes() -> None:
    y = np.arange(10) % 5
    with pytest.raises(ValueError, match=r"\(10, 5\).*\(10, 6\)"):
        paired_bootstrap(y, np.full((10, 5), 0.2), np.full((10, 6), 1 / 6), Task.MULTICLASS)


def test_hierarchical_paired_delta_covers_seeds_and_rows() -> None:
    from benchmarks.metrics import evaluate, paired_bootstrap_seeds, paired_seeds_hierarchical

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    def probs(noise: float) -> np.ndarray:
        p = 1 / (1 + np.exp(-(y - 0.5 + rng.normal(0, noise, 300))))
        return np.stack([1 - p, p], axis=1)

    good = [probs(s) for s in (0.8, 0.9, 1.0)]
    bad = [probs(s) for s in (1.6, 1.2, 3.0)]  # worse on every seed, by varying amounts
    h = paired_seeds_hierarchical(y, good, bad, "binary")
    deltas = [evaluate(y, g, "binary")["auc"] - evaluate(y, b, "binary")["auc"] for g, b in zip(good, bad)]
    assert h.delta == pytest.approx(np.mean(deltas)) and h.ci_low <= h.delta <= h.ci_high and h.ci_low > 0
    rows_only = paired_bootstrap_seeds(y, good, bad, "binary")
    assert h.ci_high - h.ci_low > rows_only.ci_high - rows_only.ci_low  # seed spread widens the interval
    same = paired_seeds_hierarchical(y, good, good, "binary")
    assert same.delta == same.ci_low == same.ci_high == 0.0
    with pytest.raises(ValueError, match="same number"):
        paired_seeds_hierarchical(y, good, bad[:2], "binary")


def test_reordering_counts_the_pairs_auc_sees() -> None:
    def two(p: np.ndarray) -> np.ndarray:
        return np.stack([1 - p, p], axis=1)

    y = np.array([1, 1, 0, 0, 0])
    a = np.array([0.9, 0.4, 0.5, 0.1, 0.2])  # one pair wrong: (0.4, 0.5)
    b = np.array([0.9, 0.6, 0.5, 0.1, 0.9])  # that pair fixed; (0.9, 0.9) now tied, (0.6, 0.9) now wrong
    r = reordering(y, two(a), two(b))
    assert (r.pairs, r.reordered) == (6, 3)
    assert r.delta == pytest.approx(roc_auc_score(y, b) - roc_auc_score(y, a))  # +1 − ½ − 1 over 6 pairs
    assert r.null_sd == pytest.approx(np.sqrt(1 + 0.25 + 1) / 6)
    assert reordering(y, two(a), two(a)).reordered == 0
    with pytest.raises(ValueError, match="both classes"):
        reordering(np.ones(5, int), two(a), two(b))


def test_holm_on_a_hand_computed_case() -> None:
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> 0.06 (monotone)
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])  # capped at 1
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.1, 1.5])


def test_ranks_count_rows_significantly_better_after_holm() -> None:
    from scipy.stats import norm

    def test(delta: float, p: float) -> PairedBootstrap:  # a normal test with this two-sided p
        return PairedBootstrap("auc", delta, delta - 0.01, delta + 0.01, p, abs(delta) / norm.isf(p / 2))

    # row 0 beats 1 (p 0.001) and 2 (p 0.02); 1 vs 2 not significant. Holm over 3 tests: 0.003, 0.04, 0.3 x 1.
    tests = {(0, 1): test(0.05, 0.001), (0, 2): test(0.03, 0.02), (1, 2): test(-0.01, 0.3)}
    assert ranks(tests, 3) == [1, 2, 2]
    assert ranks(tests, 3, higher_is_better=False) == [3, 1, 1]  # a lower-is-better metric: the deltas flip
    assert ranks({(0, 1): test(0.05, 0.001), (0, 2): test(0.03, 0.02), (1, 2): test(-0.01, 0.3)}, 3,
                 alpha=0.01) == [1, 2, 1]  # 0.02 x 2 = 0.04 > 0.01: only the first test survives


def test_seeds_mean_ci_covers_the_population_mean() -> None:
    """Simulated seeds and test sets with a known population AUC (Gaussian scores: AUC = Φ(shift / sd of the
    difference), averaged over the seeds' shifts): the 95% CI of a 3-seed mean covers it about 95% of the time."""
    from scipy.stats import norm

    def two(s: np.ndarray) -> np.ndarray:
        p = 1 / (1 + np.exp(-s))
        return np.stack([1 - p, p], axis=1)

    shift, seed_sd, row_sd, noise_sd, n = 1.0, 0.15, 0.8, 0.6, 200
    truth = norm.cdf((shift + np.random.default_rng(1).normal(0, seed_sd, 1_000_000))
                     / np.sqrt(2 * (row_sd ** 2 + noise_sd ** 2))).mean()
    rng, y, hits, draws = np.random.default_rng(0), np.repeat([1, 0], n // 2), 0, 300
    for t in range(draws):
        rows = rng.normal(0, row_sd, n)  # a test image's difficulty, shared by every seed
        runs = [two(y * (shift + rng.normal(0, seed_sd)) + rows + rng.normal(0, noise_sd, n)) for _ in range(3)]
        ci = seeds_mean_ci(y, runs, "binary", n_resamples=400, seed=t)
        hits += ci.ci_low <= truth <= ci.ci_high
    assert 0.91 <= hits / draws <= 0.98


def test_seeds_mean_reports_spread_only_with_seeds() -> None:
    y, s = random_case(Task.BINARY)
    one = seeds_mean_ci(y, [s], "binary", n_resamples=200)
    assert one.std is None and one.seeds == 1 and one.ci_low <= one.mean <= one.ci_high
    other = np.roll(s, 7, axis=0)
    two = seeds_mean_ci(y, [s, other], "binary", n_resamples=200)
    aucs = [roc_auc_score(y, x[:, 1]) for x in (s, other)]
    assert two.mean == pytest.approx(np.mean(aucs)) and two.std == pytest.approx(np.std(aucs, ddof=1))


def test_paired_p_normal_is_not_floored_by_the_resamples() -> None:
    y, good = random_case(Task.BINARY, n=600)
    noise = np.random.default_rng(5).random(good.shape)
    test = paired_bootstrap(y, good, noise, "binary", n_resamples=200)
    assert test.p_value == pytest.approx(2 / 201)  # every resample agrees: the percentile p can go no lower
    assert test.p_normal < 1e-4 and test.se > 0


def test_pooled_segmentation_ci_covers_the_truth_about_95_percent_of_the_time() -> None:
    """Images whose vessel pixels score N(mu_i, 1) against N(0, 1) background, mu_i drawn per image: the CI of the
    pooled F1 from 20 images covers the pooled F1 of the population (a very large set of images) ~95% of the time
    (measured: 0.95 over these 40 draws; with 8 images, 0.83 — the board says so)."""
    from benchmarks.metrics.segmentation import LEVELS, histogram_metrics, pooled_cis

    rng = np.random.default_rng(0)

    def images(n: int) -> np.ndarray:
        out = np.zeros((n, 2, LEVELS + 1), np.int64)
        for i, mu in enumerate(rng.normal(1.2, 0.6, n)):
            for label, (loc, count) in enumerate(((0.0, 900), (mu, 100))):
                p = 1 / (1 + np.exp(-(rng.normal(loc, 1.0, count) - 1.0)))
                out[i, label] = np.bincount(np.rint(p * LEVELS).astype(np.int64), minlength=LEVELS + 1)
        return out

    truth = histogram_metrics(sum(images(100).sum(0) for _ in range(40)))["f1"]  # the population's, in effect
    hits = [low <= truth <= high for low, high in
            (pooled_cis([images(20)], n_resamples=200, seed=k)["f1"] for k in range(40))]
    assert 0.85 <= np.mean(hits) <= 1.0
    with pytest.raises(ValueError, match="one shape"):
        pooled_cis([images(3), images(4)])


def test_f1_threshold_picks_the_lowest_threshold_of_the_best_f1_by_hand() -> None:
    """Negatives at levels 0 (10), 30000 (5), 40000 (2); positives at 30000 (3), 40000 (6), 65535 (4). Thresholds
    in (0, 30000] give F1 26/33, (30000, 40000] give 20/25 = 0.8 (the best), above: 8/17; all positive: 26/43."""
    from benchmarks.metrics.segmentation import LEVELS, f1_threshold, histogram_metrics

    hist = np.zeros((2, LEVELS + 1), np.int64)
    hist[0, [0, 30000, 40000]] = [10, 5, 2]
    hist[1, [30000, 40000, LEVELS]] = [3, 6, 4]
    t = f1_threshold(hist)
    assert t == 30001 / LEVELS
    assert histogram_metrics(hist, t)["f1"] == pytest.approx(0.8)
    others = [histogram_metrics(hist, k / LEVELS)["f1"] for k in (0, 1, 30000, 30001, 40000, 40001)]
    assert others == pytest.approx([26 / 43, 26 / 33, 26 / 33, 0.8, 0.8, 8 / 17])
    hist[1] = 0
    assert np.isnan(f1_threshold(hist))  # no positive pixel: no operating point to choose
