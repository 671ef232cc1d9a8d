"""Metrics: the registry of every metric's facts (`registry`), classification (`classification`), segmentation
(`segmentation`) and the statistics over them (`stats`: bootstrap CIs, paired tests)."""

from benchmarks.metrics import segmentation  # noqa: F401  (registers the segmentation metrics' directions)
from benchmarks.metrics.classification import choose_threshold, evaluate, per_class_auc
from benchmarks.metrics.registry import METRICS, Metric, higher_is_better, register_metric
from benchmarks.metrics.stats import (PairedBootstrap, Reordering, SeedsMean, bootstrap_ci, holm, paired_bootstrap,
                                      paired_bootstrap_seeds, paired_seeds_hierarchical, ranks, reordering,
                                      seeds_mean_ci)

__all__ = ["METRICS", "Metric", "PairedBootstrap", "bootstrap_ci", "choose_threshold", "evaluate", "higher_is_better",
           "paired_bootstrap", "paired_bootstrap_seeds", "paired_seeds_hierarchical", "per_class_auc", "register_metric",
           "Reordering", "reordering", "SeedsMean", "holm", "ranks", "seeds_mean_ci"]
