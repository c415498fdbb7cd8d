"""The Python door's run bookkeeping: keep each run's samples, compare with a baseline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .baseline import load_baseline, report_run_data
from .compare import RunData, compare_runs
from .samples import iter_sample_rows, store_run, template_hashes

__all__ = ["finish_run", "resolve_baseline"]


def resolve_baseline(baseline: Any, cache_manager: Any) -> RunData | None:
    """Load ``baseline`` before the run (errors surface before any request is sent)."""
    if baseline is None:
        return None
    return load_baseline(baseline, storage=cache_manager.storage)


def finish_run(report: Any, baseline: RunData | None, cache_manager: Any) -> None:
    """Keep the run's samples in the store (unless the cache is off); attach the comparison.

    Without a baseline the rows are streamed into the store and never held all at once.
    """
    data = report_run_data(report) if baseline is not None else None
    if cache_manager.mode != "off":
        rows = data.samples if data is not None else _rows(report)
        store_run(cache_manager.storage, report.run_id, report.manifest, rows)
    if data is not None and baseline is not None:
        report.comparison = compare_runs(data, baseline)


def _rows(report: Any) -> Iterator[dict[str, Any]]:
    return iter_sample_rows(
        report.records,
        report.run_id,
        templates=template_hashes(report.manifest),
        experiment=report.metadata.get("experiment"),
        log_prompts="hash",
    )
