"""Metrics: classification (`classification`), segmentation (`segmentation`) and the statistics over them
(`stats`: bootstrap CIs, paired tests)."""

from benchmarks.metrics.classification import METRICS, MetricInfo, choose_threshold, evaluate, per_class_auc
from benchmarks.metrics.stats import PairedBootstrap, bootstrap_ci, paired_bootstrap, paired_bootstrap_seeds

__all__ = ["METRICS", "MetricInfo", "PairedBootstrap", "bootstrap_ci", "choose_threshold", "evaluate",
           "paired_bootstrap", "paired_bootstrap_seeds", "per_class_auc"]
