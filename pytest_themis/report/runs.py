"""Runs as the report tools see them: listing a store, a run's date, headline and table rows."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from ..comparison.samples import LATEST_KEY
from .formatting import number

__all__ = ["cell_results", "headline", "list_runs", "run_date"]


def list_runs(storage: Any) -> list[dict[str, Any]]:
    """Runs kept in ``storage`` (newest first): run id, date, cell count, headline metric."""
    keys = set(storage.keys("samples:"))
    index = []
    for key in keys:
        if key == LATEST_KEY:
            continue
        parent, _, tail = key.rpartition(":")
        if tail.isdigit() and parent in keys:
            continue  # a chunk of samples, not a run's index entry
        index.append(key)
    found = storage.get_many(sorted(index))
    runs = []
    for key, value in found.items():
        manifest = value.get("manifest") or {}
        runs.append(
            {
                "run_id": key[len("samples:") :],
                "date": run_date(manifest),
                "cells": len(manifest.get("cells", [])),
                "headline": headline(manifest),
            }
        )
    return sorted(runs, key=lambda r: (r["date"], r["run_id"]), reverse=True)


def run_date(manifest: Mapping[str, Any]) -> str:
    """The run's creation time as ``YYYY-MM-DD HH:MM:SS`` (UTC), or ``-``."""
    created = manifest.get("created_at") or (manifest.get("timings") or {}).get("started_at")
    if not created:
        return "-"
    return str(created).replace("T", " ")[:19]


def headline(manifest: Mapping[str, Any]) -> str:
    """The first metric of the cells: ``ExactMatch 0.700`` or a ``min–max`` range over cells."""
    cells = manifest.get("cells", [])
    if not cells or not cells[0].get("metrics"):
        return "-"
    name = next(iter(cells[0]["metrics"]))
    means = [
        float(c["metrics"][name]["mean"])
        for c in cells
        if name in c.get("metrics", {}) and c["metrics"][name].get("mean") is not None
    ]
    means = [m for m in means if not math.isnan(m)]
    if not means:
        return f"{name} -"
    low, high = min(means), max(means)
    shown = number(low) if low == high else f"{number(low)}–{number(high)}"
    return f"{name} {shown}"


def cell_results(manifest: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """A manifest's cells in the shape the terminal table formats."""
    for cell in manifest.get("cells", []):
        counts = cell.get("counts") or {}
        execution = cell.get("execution") or {}
        yield {
            "experiment": cell.get("experiment"),
            "cell_id": cell.get("cell_id"),
            "metrics": cell.get("metrics") or {},
            "total": counts.get("total", 0),
            "cached": execution.get("cached", 0),
            "errors": counts.get("errors", 0),
            "tokens": (cell.get("usage") or {}).get("total_tokens", 0),
            "cost": cell.get("cost_usd") or 0.0,
            "duration": execution.get("duration_s") or 0.0,
        }
