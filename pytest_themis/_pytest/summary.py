"""The end-of-session table: one row per evaluated cell."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "WrittenManifest",
    "format_table",
    "interrupted_lines",
    "junit_properties",
    "write_manifest",
]

_HEADERS = ("cell", "metrics (95% CI)", "n", "cached", "errors", "tokens", "cost $", "time")


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    return f"{value:.3f}"


def _metric_text(name: str, agg: Mapping[str, Any]) -> str:
    return f"{name} {_num(agg.get('mean'))} [{_num(agg.get('ci_low'))}, {_num(agg.get('ci_high'))}]"


def _row(result: Mapping[str, Any]) -> tuple[str, ...]:
    metrics = "; ".join(_metric_text(n, a) for n, a in result.get("metrics", {}).items())
    return (
        f"{result['experiment']} [{result['cell_id']}]",
        metrics or "-",
        str(result.get("total", 0)),
        str(result.get("cached", 0)),
        str(result.get("errors", 0)),
        str(result.get("tokens", 0)),
        f"{float(result.get('cost') or 0.0):.4f}",
        f"{float(result.get('duration') or 0.0):.1f}s",
    )


def _gate_text(gates: Iterable[Mapping[str, Any]]) -> str:
    """``ok 0.820>=0.6`` / ``FAIL 0.692<0.75`` per gate: the number compared, not the mean."""
    parts = []
    for gate in gates:
        compared = gate.get("compared")
        shown = _num(compared) if compared is not None else "n/a"
        relation = ">=" if gate.get("passed") else "<"
        verdict = "ok" if gate.get("passed") else "FAIL"
        parts.append(f"{verdict} {shown}{relation}{float(gate.get('threshold') or 0):g}")
    return "; ".join(parts) or "-"


def format_table(results: Iterable[Mapping[str, Any]]) -> list[str]:
    """Plain-text table lines (no colours, so it reads the same in CI logs).

    A ``gate`` column is added when any cell was gated (``--themis-fail-under``).
    """
    results = list(results)
    headers: tuple[str, ...] = _HEADERS
    rows: list[tuple[str, ...]] = [_row(r) for r in results]
    if any(r.get("gates") for r in results):
        headers = (*_HEADERS, "gate")
        rows = [
            (*row, _gate_text(r.get("gates") or ())) for row, r in zip(rows, results, strict=True)
        ]
    rows = [headers, *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    right = {2, 3, 4, 5, 6, 7}

    def fmt(row: tuple[str, ...]) -> str:
        cells = [
            row[i].rjust(widths[i]) if i in right else row[i].ljust(widths[i])
            for i in range(len(row))
        ]
        return "  ".join(cells).rstrip()

    lines = [fmt(rows[0]), "  ".join("-" * w for w in widths)]
    lines += [fmt(row) for row in rows[1:]]
    return lines


def junit_properties(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(name, value)`` pairs recorded as the item's JUnit XML properties."""
    props = [("themis_cell", str(result["cell_id"]))]
    for name, agg in result.get("metrics", {}).items():
        props.append((f"themis_{name}", _num(agg.get("mean"))))
        props.append((f"themis_{name}_ci_low", _num(agg.get("ci_low"))))
        props.append((f"themis_{name}_ci_high", _num(agg.get("ci_high"))))
        props.append((f"themis_{name}_n", str(agg.get("count", 0))))
    for key in ("total", "cached", "errors", "tokens"):
        props.append((f"themis_{key}", str(result.get(key, 0))))
    props.append(("themis_cost_usd", f"{float(result.get('cost') or 0.0):.6f}"))
    return props


class WrittenManifest(NamedTuple):
    """Where the manifest went (or why it did not) and what it holds."""

    path: Path | None
    error: str | None
    manifest: dict[str, Any] | None


def write_manifest(
    results: list[Mapping[str, Any]],
    run_id: str,
    path: Path,
    *,
    interrupted: bool = False,
    started: float | None = None,
) -> WrittenManifest:
    """Merge the cells' manifest parts into one validated file (or say why it was not written).

    An ``interrupted`` run (Ctrl-C) still gets a manifest: the cells that finished, marked
    ``"interrupted": true`` (with no finished cell, an empty one timed from ``started``).
    """
    from ..errors import ThemisError
    from ..experiment.manifest import manifest_hash, merge_manifests, validate_manifest

    # The environment is the controller's (an xdist worker's argv differs from a serial run's).
    parts = [dict(r["manifest"], environment=None) for r in results if r.get("manifest")]
    if not parts and interrupted:
        now = time.time()
        parts = [{"timings": {"started_at": started or now, "finished_at": now}}]
    if not parts:
        return WrittenManifest(None, "no manifest parts were produced", None)
    try:
        manifest = merge_manifests(parts, run_id)
        if interrupted:
            manifest["interrupted"] = True
            manifest["manifest_sha256"] = manifest_hash(manifest)
        validate_manifest(manifest)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
        os.replace(tmp, path)
    except (ThemisError, OSError) as exc:
        return WrittenManifest(None, str(exc), None)
    return WrittenManifest(path, None, manifest)


def interrupted_lines(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """What the summary says after Ctrl-C."""
    return [
        f"themis: interrupted — {len(results)} cell(s) finished (shown above); every finished "
        "generation is cached, so rerunning the same command resumes where this run stopped"
    ]
