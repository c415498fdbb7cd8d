"""Finding a baseline run: a manifest or run file, a run id in the store, or ``latest``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .compare import RunData
from .samples import load_stored_run, read_jsonl, sample_rows, template_hashes

__all__ = ["load_baseline", "report_run_data", "samples_reference"]


def samples_reference(samples_path: Path, manifest_dir: Path, sha256: str, count: int) -> dict:
    """The manifest's ``samples`` entry: path (relative to the manifest when inside its folder)."""
    try:
        shown = str(samples_path.resolve().relative_to(manifest_dir.resolve()))
    except ValueError:
        shown = str(samples_path.resolve())
    return {"path": shown, "sha256": sha256, "count": count}


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


def _looks_like_path(text: str) -> bool:
    return any(sep in text for sep in ("/", "\\", os.sep)) or text.endswith((".json", ".jsonl"))


def load_baseline(
    baseline: Any, *, storage: Any = None, latest_manifest: Path | None = None
) -> RunData:
    """Resolve ``baseline`` to a run, or raise :class:`ConfigurationError` saying why not.

    ``baseline``: an ``ExperimentReport``; a path to a manifest or ``runs/<run_id>.json`` file
    (which must reference its samples file); a run id kept in ``storage``; or ``latest`` (the
    manifest at ``latest_manifest`` when it exists, else the last run kept in ``storage``).
    """
    if hasattr(baseline, "records") and hasattr(baseline, "manifest"):
        return report_run_data(baseline)
    if not isinstance(baseline, (str, os.PathLike)) or not str(baseline).strip():
        raise ConfigurationError(
            f"baseline must be a manifest path, a run id or 'latest', got {baseline!r}"
        )
    text = str(baseline).strip()
    if text == "latest":
        if latest_manifest is not None and latest_manifest.is_file():
            return _from_file(latest_manifest)
        found = load_stored_run(storage, "latest") if storage is not None else None
        if found is None:
            raise ConfigurationError(
                "baseline 'latest': no earlier run is recorded here; run once without a "
                "baseline first, or name a manifest path or run id"
            )
        manifest, rows = found
        return RunData(str(manifest.get("run_id")), manifest, rows)
    path = Path(os.path.expanduser(text))
    if path.is_file():
        return _from_file(path)
    if _looks_like_path(text):
        raise ConfigurationError(f"baseline file {text} does not exist")
    found = load_stored_run(storage, text) if storage is not None else None
    if found is None:
        raise ConfigurationError(
            f"baseline {text!r} is neither a file nor a run id kept in the store; pass a "
            "manifest path, a run id of an earlier run or 'latest'"
        )
    manifest, rows = found
    return RunData(text, manifest, rows)


def _from_file(path: Path) -> RunData:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigurationError(f"baseline {path} is not a themis manifest: {exc}") from None
    if not isinstance(manifest, dict) or "cells" not in manifest or "run_id" not in manifest:
        raise ConfigurationError(
            f"baseline {path} is not a themis manifest (no run_id/cells); pass the "
            "manifest.json or runs/<run_id>.json an earlier run wrote"
        )
    ref = manifest.get("samples")
    if not isinstance(ref, dict) or not ref.get("path"):
        raise ConfigurationError(
            f"baseline {path} has no per-sample results; rerun the baseline with this version "
            "so it records them"
        )
    samples_path = Path(str(ref["path"]))
    if not samples_path.is_absolute():
        samples_path = path.parent / samples_path
    try:
        rows, digest = read_jsonl(samples_path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigurationError(
            f"baseline {path}: its per-sample results {samples_path} cannot be read: {exc}"
        ) from None
    if ref.get("sha256") and ref["sha256"] != digest:
        raise ConfigurationError(
            f"baseline {path}: {samples_path} changed since the manifest was written "
            "(SHA-256 differs); use the samples file of that run"
        )
    return RunData(str(manifest["run_id"]), manifest, rows)
