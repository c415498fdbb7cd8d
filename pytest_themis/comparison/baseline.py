"""Finding a baseline run: a manifest or run file, a run id in the store, or ``latest``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .compare import RunData
from .loading import load_run
from .samples import sample_rows, template_hashes

__all__ = ["load_baseline", "report_run_data", "samples_reference"]


def samples_reference(
    samples_path: Path, manifest_dir: Path, sha256: str, count: int, content_sha256: str
) -> dict:
    """The manifest's ``samples`` entry for a samples file: its path (relative to the manifest
    when inside its folder), the file's ``sha256``, the rows' ``content_sha256`` (what the
    manifest hash covers: the file's bytes also hold latencies and cached flags) and count."""
    try:
        shown = str(samples_path.resolve().relative_to(manifest_dir.resolve()))
    except ValueError:
        shown = str(samples_path.resolve())
    return {"path": shown, "sha256": sha256, "content_sha256": content_sha256, "count": count}


def report_run_data(report: Any, log_prompts: str = "hash") -> RunData:
    """A finished :class:`ExperimentReport` as comparison input."""
    rows = sample_rows(
        report.records,
        report.run_id,
        templates=template_hashes(report.manifest),
        experiment=report.metadata.get("experiment"),
        log_prompts=log_prompts,
    )
    return RunData(report.run_id, report.manifest, rows)


def load_baseline(
    baseline: Any, *, storage: Any = None, latest_manifest: Path | None = None
) -> RunData:
    """An ``ExperimentReport`` as is, else :func:`.loading.load_run` as the baseline."""
    if hasattr(baseline, "records") and hasattr(baseline, "manifest"):
        return report_run_data(baseline)
    return load_run(
        baseline,
        storage,
        latest_manifest=latest_manifest,
        role="baseline",
        hint="run once without a baseline first, or pass a manifest path, a run id of an "
        "earlier run or 'latest'",
    )
