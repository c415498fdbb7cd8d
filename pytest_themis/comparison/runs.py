"""The Python door's run bookkeeping: compare with a baseline, finalize the manifest, keep the
run's samples."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..experiment.manifest import finalize_manifest
from .baseline import load_baseline, report_run_data
from .compare import RunData, compare_runs
from .samples import (
    iter_sample_rows,
    mark_latest,
    samples_digest,
    store_run,
    stored_digest,
    template_hashes,
)

__all__ = ["finish_run", "resolve_baseline"]


def resolve_baseline(baseline: Any, cache_manager: Any) -> RunData | None:
    """Load ``baseline`` before the run (errors surface before any request is sent)."""
    if baseline is None:
        return None
    return load_baseline(baseline, storage=cache_manager.storage)


def finish_run(report: Any, baseline: RunData | None, cache_manager: Any) -> None:
    """The run's one end step: comparison, final manifest, then the samples kept in the store.

    ``report.manifest`` becomes the final manifest (``finalize_manifest``): its ``samples``
    reference names the store entry and the rows' :func:`samples_digest` (unless the cache is
    off), its ``comparison`` is the one attached as ``report.comparison``. The rows are streamed
    into the store, never held all at once without a baseline. When the store already holds
    rows with the same digest under this run id (a fully cached rerun of a deterministic run
    id), they are kept as they are: the new rows would differ only in their ``cached`` flags and
    latencies, which describe the run that produced the generations.
    """
    data = report_run_data(report) if baseline is not None else None
    comparison = compare_runs(data, baseline) if data is not None and baseline is not None else None
    keep = cache_manager.mode != "off"
    templates = template_hashes(report.manifest)
    experiment = report.metadata.get("experiment")
    samples = digest = None
    if keep:
        digest = samples_digest(
            report.records, report.run_id, templates=templates, experiment=experiment
        )
        samples = {
            "store_key": f"samples:{report.run_id}",
            "content_sha256": digest,
            "count": len(report.records),
        }
    report.manifest = finalize_manifest(
        report.manifest,
        samples=samples,
        comparison=comparison.to_dict() if comparison is not None else None,
    )
    report.comparison = comparison
    if not keep:
        return
    storage = cache_manager.storage
    if stored_digest(storage, report.run_id) == digest:
        mark_latest(storage, report.run_id)
        return
    rows = data.samples if data is not None else _rows(report, templates, experiment)
    store_run(storage, report.run_id, report.manifest, rows, digest=digest)


def _rows(report: Any, templates: dict[str, str], experiment: Any) -> Iterator[dict[str, Any]]:
    return iter_sample_rows(
        report.records,
        report.run_id,
        templates=templates,
        experiment=experiment,
        log_prompts="hash",
    )
