"""Metrics: the registry of every metric's facts (`registry`), classification (`classification`), segmentation
(`segmentation`) and the statistics over them (`stats`: bootstrap CIs, paired tests)."""

from benchmarks.metrics import segmentation  # noqa: F401  (registers the segmentation metrics' directions)
from benchmarks.metrics.classification import choose_threshold, evaluate, per_class_auc
from benchmarks.metrics.registry import METRICS, Metric, higher_is_better, register_metric
from benchmarks.metrics.stats import (PairedBootstrap, Reordering, bootstrap_ci, paired_bootstrap,
                                      paired_bootstrap_seeds, paired_seeds_hierarchical, reordering)

__all__ = ["METRICS", "Metric", "PairedBootstrap", "bootstrap_ci", "choose_threshold", "evaluate", "higher_is_better",
           "paired_bootstrap", "paired_bootstrap_seeds", "paired_seeds_hierarchical", "per_class_auc", "register_metric",
           "Reordering", "reordering"]
