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
