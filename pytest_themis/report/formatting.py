"""How numbers, metrics and comparisons read in every report: one place for the formats.

The terminal "vs baseline" table, the Markdown summary and the HTML report show the same
columns (:data:`COMPARISON_HEADER`) with the same numbers (:func:`comparison_rows`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..comparison.results import Comparison

__all__ = [
    "COMPARISON_HEADER",
    "MISSING",
    "cell_label",
    "comparison_rows",
    "format_comparison",
    "interval",
    "metric_text",
    "number",
    "p_value",
]

#: Shown for a number that is absent or not finite.
MISSING = "–"
COMPARISON_HEADER = ("cell", "metric", "Δ", "95% CI", "p (Holm)", "n", "verdict")


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def number(value: Any, *, signed: bool = False, digits: int = 3, missing: str = MISSING) -> str:
    """``value`` with ``digits`` decimals (``+``/``-`` sign when ``signed``); ``missing`` when
    absent or not finite."""
    if _absent(value):
        return missing
    return f"{float(value):+.{digits}f}" if signed else f"{float(value):.{digits}f}"


def p_value(value: Any, *, missing: str = MISSING) -> str:
    """A p-value to three significant digits."""
    return missing if _absent(value) else f"{float(value):.3g}"


def interval(low: Any, high: Any, *, signed: bool = False, missing: str = MISSING) -> str:
    """``[low, high]`` with :func:`number`."""
    return (
        f"[{number(low, signed=signed, missing=missing)}, "
        f"{number(high, signed=signed, missing=missing)}]"
    )


def metric_text(name: str, aggregate: Mapping[str, Any], total: int = 0) -> str:
    """``ExactMatch 0.700 [0.600, 0.800]`` (mean and 95% CI), or ``ExactMatch all N failed``."""
    if not aggregate.get("count") and total:
        return f"{name} all {total} failed"
    return (
        f"{name} {number(aggregate.get('mean'))} "
        f"{interval(aggregate.get('ci_low'), aggregate.get('ci_high'))}"
    )


def cell_label(experiment: Any, cell_id: Any) -> str:
    """How a cell is named in reports: ``experiment [cell_id]``."""
    return f"{experiment} [{cell_id}]"


def comparison_rows(
    comparison: Comparison, *, missing: str = MISSING
) -> Iterator[tuple[str, str, str, str, str, str, str]]:
    """One row per matched cell × metric, in the columns of :data:`COMPARISON_HEADER`."""
    for cell in comparison.cells:
        for m in cell.metrics.values():
            yield (
                cell_label(cell.experiment, cell.cell_id),
                m.metric,
                number(m.difference, signed=True, missing=missing),
                interval(m.ci_low, m.ci_high, signed=True, missing=missing),
                p_value(m.p_adjusted, missing=missing),
                str(m.pairs),
                m.verdict,
            )


def format_comparison(comparison: Comparison) -> list[str]:
    """The terminal's "vs baseline" lines: the :func:`comparison_rows` table, then per-cell notes
    (changed fingerprints, unpaired rows, errors), unmatched cells, warnings and the verdict."""
    rows = [COMPARISON_HEADER, *comparison_rows(comparison)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COMPARISON_HEADER))]
    lines = [f"baseline {comparison.baseline_run_id} (margin {comparison.margin:g})"]
    lines += [
        "  ".join(text.ljust(w) for text, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    for cell in comparison.cells:
        notes = list(cell.changes)
        if cell.only_new or cell.only_baseline:
            notes.append(
                f"unpaired rows: {cell.only_new} only in this run, "
                f"{cell.only_baseline} only in the baseline"
            )
        if cell.errors:
            notes.append(f"{cell.errors} row(s) with a generation error left out")
        lines += [f"{cell.cell_id}: {note}" for note in notes]
    if comparison.unmatched_new:
        lines.append(f"not in the baseline: {', '.join(comparison.unmatched_new)}")
    lines += [f"warning: {w}" for w in comparison.warnings]
    lines.append(f"verdict: {comparison.verdict}")
    return lines
