"""The Python door's run bookkeeping: keep each run's samples, compare with a baseline."""

from __future__ import annotations

from typing import Any

from .baseline import load_baseline, report_run_data
from .compare import RunData, compare_runs
from .samples import store_run

__all__ = ["finish_run", "resolve_baseline"]


def resolve_baseline(baseline: Any, cache_manager: Any) -> RunData | None:
    """Load ``baseline`` before the run (errors surface before any request is sent)."""
    if baseline is None:
        return None
    return load_baseline(baseline, storage=cache_manager.storage)


def finish_run(report: Any, baseline: RunData | None, cache_manager: Any) -> None:
    """Keep the run's samples in the store (unless the cache is off); attach the comparison."""
    data = report_run_data(report)
    if cache_manager.mode != "off":
        store_run(cache_manager.storage, report.run_id, report.manifest, data.samples)
    if baseline is not None:
        report.comparison = compare_runs(data, baseline)
