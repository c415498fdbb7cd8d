"""The reproducibility manifest: what ran, on what, with which code, and what it scored."""

from __future__ import annotations

import copy
import json
import platform
import subprocess
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from ..core.hashing import stable_hash
from ..errors import ThemisError
from .schema_check import first_violation

__all__ = [
    "SCHEMA_VERSION",
    "build_manifest",
    "check_manifest",
    "finalize_manifest",
    "iso_utc",
    "environment_info",
    "manifest_hash",
    "manifest_schema",
    "merge_manifests",
    "strip_volatile",
    "validate_manifest",
]

SCHEMA_VERSION = "1.0"
_PACKAGES = ("pytest-themis", "litellm", "datasets", "diskcache", "math-verify", "pytest")
_VOLATILE_TOP = ("created_at", "timings", "manifest_sha256")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_info() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], capture_output=True, text=True, timeout=5, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


@lru_cache(maxsize=1)
def environment_info() -> dict[str, Any]:
    """Python, platform, package versions and the git state of the working directory."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "packages": {name: _version(name) for name in _PACKAGES},
        "git": _git_info(),
    }


def _cell_entry(experiment: str, report: Any, dataset_fp: str, pipeline_fp: str) -> dict[str, Any]:
    summary = report.summary()
    cell = summary.pop("cell")
    counts = summary["counts"]
    execution = {
        "cached": counts.pop("cached"),
        "generated": counts.pop("generated"),
        "duration_s": round(report.duration, 3),
    }
    return {
        "experiment": experiment,
        "cell_id": cell["cell_id"],
        "model": cell["model"],
        "template": cell["template"],
        "sampling": cell["sampling"],
        "dataset": dataset_fp,
        "pipeline": pipeline_fp,
        **summary,
        "execution": execution,
    }


_HUB_FIELDS = ("config", "split", "revision")


def _dataset_entry(info: dict[str, Any]) -> dict[str, Any]:
    """The manifest's record of a dataset: Hub fields only for Hub loads."""
    kind = info.get("kind")
    if kind == "local_file":
        return {k: v for k, v in info.items() if k not in _HUB_FIELDS}
    if kind == "packaged":
        return {k: v for k, v in info.items() if k not in ("config", "revision")}
    return info


def iso_utc(epoch: float) -> str:
    """``epoch`` seconds as ISO 8601 UTC with milliseconds (the manifest's one time format)."""
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")


def _epoch(value: Any) -> float:
    if isinstance(value, str):
        return datetime.fromisoformat(value).timestamp()
    return float(value or 0.0)


def build_manifest(
    *,
    run_id: str,
    experiment: str,
    plan: Any,
    pipeline: Any,
    dataset_info: dict[str, Any],
    cell_reports: Sequence[Any],
    runner: dict[str, Any] | None = None,
    cache: dict[str, Any] | None = None,
    started_at: float,
    finished_at: float,
) -> dict[str, Any]:
    """One run's manifest. ``cell_reports`` are per-cell ``EvaluationReport`` objects."""
    dataset_fp = dataset_info.get("fingerprint") or stable_hash(dataset_info)
    pipeline_info = {"fingerprint": pipeline.fingerprint, **pipeline.to_dict()}
    plan_info = plan.to_dict()
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "environment": environment_info(),
        "datasets": [_dataset_entry(dict(dataset_info, fingerprint=dataset_fp))],
        "templates": plan_info["templates"],
        "models": plan_info["models"],
        "sampling": plan_info["sampling"],
        "pipelines": [pipeline_info],
        "settings": {
            "num_samples": plan_info["num_samples"],
            "runner": runner or {},
            "cache": cache or {},
        },
        "cells": [
            _cell_entry(experiment, r, dataset_fp, pipeline_info["fingerprint"])
            for r in cell_reports
        ],
    }
    _add_totals_and_hash(manifest, started_at, finished_at)
    return manifest


def _unique(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for item in items:
        seen.setdefault(stable_hash(item), item)
    return [seen[k] for k in sorted(seen)]


def merge_manifests(parts: Sequence[dict[str, Any]], run_id: str) -> dict[str, Any]:
    """Combine run manifests (e.g. one per test or xdist worker) into one; order does not matter."""
    if not parts:
        raise ThemisError("merge_manifests needs at least one manifest part")
    cells = {}
    for part in parts:
        for cell in part.get("cells", []):
            cells[(cell["experiment"], cell["cell_id"], cell["dataset"], cell["pipeline"])] = cell
    started = min(_epoch(p.get("timings", {}).get("started_at")) for p in parts)
    finished = max(_epoch(p.get("timings", {}).get("finished_at")) for p in parts)
    settings = _unique(p.get("settings", {}) for p in parts)
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "environment": parts[0].get("environment") or environment_info(),
        "datasets": _unique(d for p in parts for d in p.get("datasets", [])),
        "templates": _unique(t for p in parts for t in p.get("templates", [])),
        "models": _unique(m for p in parts for m in p.get("models", [])),
        "sampling": _unique(s for p in parts for s in p.get("sampling", [])),
        "pipelines": _unique(x for p in parts for x in p.get("pipelines", [])),
        "settings": settings[0] if len(settings) == 1 else {"variants": settings},
        "cells": [cells[k] for k in sorted(cells)],
    }
    _add_totals_and_hash(manifest, started, finished)
    return manifest


def _add_totals_and_hash(manifest: dict[str, Any], started: float, finished: float) -> None:
    counts = {"total": 0, "errors": 0, "extraction_failures": 0}
    execution = {"cached": 0, "generated": 0}
    tokens = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    cost = 0.0
    for cell in manifest["cells"]:
        for key in counts:
            counts[key] += int(cell["counts"][key])
        for key in execution:
            execution[key] += int(cell["execution"][key])
        for key in tokens:
            tokens[key] += int(cell["usage"][key])
        cost += float(cell["cost_usd"] or 0.0)
    manifest["totals"] = {
        "counts": counts,
        "usage": tokens,
        "cost_usd": round(cost, 8),
        "incomplete_cells": sum(1 for c in manifest["cells"] if c.get("incomplete")),
    }
    manifest["created_at"] = iso_utc(datetime.now(timezone.utc).timestamp())
    manifest["timings"] = {
        "started_at": iso_utc(started),
        "finished_at": iso_utc(finished),
        "duration_s": round(max(0.0, finished - started), 3),
        **execution,
    }
    manifest["manifest_sha256"] = manifest_hash(manifest)


def strip_volatile(manifest: dict[str, Any]) -> dict[str, Any]:
    """A copy without what differs between equal runs or between copies of one manifest.

    Dropped: ``created_at``, ``timings``, ``manifest_sha256``, each cell's ``execution`` (cache
    hit counts, durations) and, in ``samples``, the file's ``path`` (relative to where the copy
    lives) and ``sha256`` (the file's bytes hold latencies and cached flags).
    """
    clean = copy.deepcopy(manifest)
    for key in _VOLATILE_TOP:
        clean.pop(key, None)
    for cell in clean.get("cells", []):
        cell.pop("execution", None)
    samples = clean.get("samples")
    if isinstance(samples, dict):
        samples.pop("path", None)
        samples.pop("sha256", None)
    return clean


def manifest_hash(manifest: dict[str, Any]) -> str:
    """SHA-256 of the manifest's content: :func:`strip_volatile` of it, as canonical JSON.

    It covers every section the final manifest holds — datasets, templates, models, sampling,
    pipelines, settings, cells (scores, counts, gates), totals, ``interrupted``, the ``samples``
    reference's count and content hash, and the ``comparison`` — so two runs with equal content
    have equal hashes.
    """
    return stable_hash(strip_volatile(manifest))


def finalize_manifest(
    manifest: dict[str, Any],
    *,
    samples: dict[str, Any] | None = None,
    comparison: dict[str, Any] | None = None,
    interrupted: bool = False,
) -> dict[str, Any]:
    """The manifest in its final form: sections added, hashed over them, checked once.

    Returns a new dict with the ``samples`` reference, the ``comparison`` and the
    ``interrupted`` flag added (those given), ``manifest_sha256`` recomputed over the result and
    :func:`check_manifest` passed. Both doors call it once per run, before writing anything.
    """
    final = dict(manifest)
    if interrupted:
        final["interrupted"] = True
    if samples is not None:
        final["samples"] = samples
    if comparison is not None:
        final["comparison"] = comparison
    final["manifest_sha256"] = manifest_hash(final)
    check_manifest(final)
    return final


@lru_cache(maxsize=1)
def manifest_schema() -> dict[str, Any]:
    """The JSON Schema shipped with the package (``pytest_themis/schema/manifest.schema.json``)."""
    path = Path(__file__).resolve().parent.parent / "schema" / "manifest.schema.json"
    text = path.read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema  # deferred: ~0.1-0.3 s, paid only where the full validation is asked for

    return jsonschema.Draft202012Validator(manifest_schema())


def validate_manifest(manifest: dict[str, Any]) -> None:
    """Validate with ``jsonschema`` (installed with the ``test`` extra), the reference the tests
    hold :func:`check_manifest` to; raise :class:`ThemisError` naming the first violation."""
    errors = sorted(_validator().iter_errors(manifest), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "(root)"
        raise ThemisError(f"manifest is invalid at {where}: {first.message}")


def check_manifest(manifest: dict[str, Any]) -> None:
    """The session-end check against the shipped JSON Schema, without importing ``jsonschema``
    (:mod:`.schema_check` covers every keyword the schema uses); raise :class:`ThemisError`
    naming the first violation."""
    problem = first_violation(manifest, manifest_schema())
    if problem is not None:
        where, message = problem
        raise ThemisError(f"manifest is invalid at {'/'.join(where) or '(root)'}: {message}")
