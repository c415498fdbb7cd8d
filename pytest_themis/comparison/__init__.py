"""Comparing runs: per-sample results, paired statistics against a baseline, pass@k."""

from __future__ import annotations

from .compare import RunData, compare_runs
from .results import VERDICTS, CellComparison, Comparison, MetricComparison
from .statistics import (
    holm,
    maj_at_k,
    mcnemar_exact,
    minimum_detectable_difference,
    paired_bootstrap,
    paired_bootstraps,
    pass_at_k,
)

__all__ = [
    "VERDICTS",
    "CellComparison",
    "Comparison",
    "MetricComparison",
    "RunData",
    "compare_runs",
    "holm",
    "maj_at_k",
    "mcnemar_exact",
    "minimum_detectable_difference",
    "paired_bootstrap",
    "paired_bootstraps",
    "pass_at_k",
]
