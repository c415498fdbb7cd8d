"""Session end: the table (one row per evaluated cell), the merged manifest, JSON writes."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..report.formatting import metric_text, number

__all__ = [
    "WrittenManifest",
    "format_table",
    "interrupted_lines",
    "junit_properties",
    "session_manifest",
    "write_json",
]

_HEADERS = ("cell", "metrics (95% CI)", "n", "cached", "errors", "tokens", "cost $", "time")
_WIDTH = 100


def _num(value: Any) -> str:
    return number(value, missing="nan")


def _gate_key(gate: Mapping[str, Any]) -> str:
    return f"{gate.get('metric') or 'gate'}>={float(gate.get('threshold') or 0):g}"


def _gate_cell(gate: Mapping[str, Any] | None, with_value: bool) -> str:
    """``ok 0.820`` / ``FAIL 0.692``: the number the gate compared (the mean, or the CI bound of
    a ``lower`` gate), or just ``ok``/``FAIL``; ``-`` when the gate did not apply to the cell."""
    if gate is None:
        return "-"
    verdict = "ok" if gate.get("passed") else "FAIL"
    if not with_value:
        return verdict
    compared = gate.get("compared")
    return f"{verdict} {_num(compared) if compared is not None else 'n/a'}"


def _gate_headers(keys: list[str]) -> tuple[list[str], list[str]]:
    """Column headers of the gates and the legend lines under the table.

    ``>=0.5`` when every gate is on one metric; with gates on several metrics the columns are
    ``g1``, ``g2`` … and a legend names each (``g1: ExactMatch>=0.5``), so the table stays narrow.
    """
    metrics = {k.split(">=", 1)[0] for k in keys}
    if len(metrics) <= 1:
        return [">=" + k.split(">=", 1)[1] for k in keys], []
    names = [f"g{i}" for i in range(1, len(keys) + 1)]
    return names, ["gates: " + ", ".join(f"{n}: {k}" for n, k in zip(names, keys, strict=True))]


def _rows(result: Mapping[str, Any], gate_keys: list[str]) -> list[tuple[str, ...]]:
    """The cell's line, then one continuation line per further metric."""
    total = int(result.get("total", 0) or 0)
    metrics = [metric_text(n, a, total) for n, a in result.get("metrics", {}).items()] or ["-"]
    gates = {_gate_key(g): g for g in result.get("gates") or ()}
    first = (
        f"  {result['cell_id']}",
        metrics[0],
        str(total),
        str(result.get("cached", 0)),
        str(result.get("errors", 0)),
        str(result.get("tokens", 0)),
        f"{float(result.get('cost') or 0.0):.4f}",
        f"{float(result.get('duration') or 0.0):.1f}s",
        *(_gate_cell(gates.get(k), len(gate_keys) == 1) for k in gate_keys),
    )
    blank = ("",) * (len(first) - 2)
    return [first, *(("", m, *blank) for m in metrics[1:])]


def format_table(results: Iterable[Mapping[str, Any]], width: int = _WIDTH) -> list[str]:
    """Plain-text table lines (no colours, so it reads the same in CI logs).

    Cells are grouped under their experiment (the test), one metric per line; a cell whose
    every sample failed says ``all N failed``. Each ``--themis-fail-under`` gate gets a
    pass/fail column (headed ``>=0.5``, or ``g1``, ``g2`` … with a legend when gates name several
    metrics);
    a single gate also shows the number it compared (with several, the failure says it). A
    cell id too long for the table to fit ``width`` is put on a line of its own.
    """
    results = list(results)
    gate_keys = list(dict.fromkeys(_gate_key(g) for r in results for g in r.get("gates") or ()))
    gate_headers, legend = _gate_headers(gate_keys)
    headers: tuple[str, ...] = (*_HEADERS, *gate_headers)
    body: list[tuple[str, ...] | str] = []
    experiment = None
    for r in results:
        if r["experiment"] != experiment:
            experiment = r["experiment"]
            body.append(str(experiment))
        body.extend(_rows(r, gate_keys))
    rows = [headers, *(b for b in body if isinstance(b, tuple))]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    widths[0] = max(len(headers[0]), min(widths[0], width - sum(widths[1:]) - 2 * len(widths[1:])))
    right = set(range(2, len(headers)))

    def fmt(row: tuple[str, ...]) -> list[str]:
        """The row's line; a cell id too long for its column goes on a line of its own first."""
        cells = [
            row[i].rjust(widths[i]) if i in right else row[i].ljust(widths[i])
            for i in range(len(row))
        ]
        if len(row[0]) <= widths[0]:
            return ["  ".join(cells).rstrip()]
        cells[0] = " " * widths[0]
        return [row[0], "  ".join(cells).rstrip()]

    lines = [*fmt(headers), "  ".join("-" * w for w in widths)]
    for b in body:
        lines += fmt(b) if isinstance(b, tuple) else [b]
    return lines + legend


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


def session_manifest(
    results: Sequence[Mapping[str, Any]],
    run_id: str,
    *,
    interrupted: bool = False,
    started: float | None = None,
) -> dict[str, Any] | None:
    """The cells' manifest parts merged into one (not yet final: see ``finalize_manifest``).

    An ``interrupted`` run (Ctrl-C) with no finished cell gets an empty manifest timed from
    ``started``; None when there is nothing to record.
    """
    from ..experiment.manifest import merge_manifests

    # The environment is the controller's (an xdist worker's argv differs from a serial run's).
    parts = [dict(r["manifest"], environment=None) for r in results if r.get("manifest")]
    if not parts and interrupted:
        now = time.time()
        parts = [{"timings": {"started_at": started or now, "finished_at": now}}]
    return merge_manifests(parts, run_id) if parts else None


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as indented JSON, atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def interrupted_lines(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """What the summary says after Ctrl-C."""
    return [
        f"themis: interrupted — {len(results)} cell(s) finished (shown above); every finished "
        "generation is cached, so rerunning the same command resumes where this run stopped"
    ]
