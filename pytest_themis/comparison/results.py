"""Typed comparison results: per metric, per cell (:class:`CellComparison`), per run."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..report.formatting import number, p_value

__all__ = ["VERDICTS", "CellComparison", "Comparison", "MetricComparison"]

#: Verdicts from worst to best; a cell's verdict is the worst of its metrics'.
VERDICTS = ("regressed", "inconclusive", "improved", "unchanged")


@dataclass
class MetricComparison:
    """One metric of one matched cell: the paired difference new − baseline and its verdict.

    ``method`` is ``mcnemar`` (0/1 scores, one sample per row: exact McNemar p-value, Newcombe
    interval), ``bootstrap`` (continuous scores) or ``cluster-bootstrap`` (several epochs per
    row, rows resampled whole). ``worse``/``better`` count discordant pairs of 0/1 metrics.
    ``mdd`` is the minimum detectable difference (80% power, two-sided 5%) at this n.
    """

    metric: str
    method: str
    pairs: int
    rows: int
    baseline_mean: float
    new_mean: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    stderr: float
    mdd: float
    worse: int | None = None
    better: int | None = None
    p_adjusted: float = math.nan
    verdict: str = "inconclusive"
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: _clean(v) for k, v in self.__dict__.items()}


@dataclass
class CellComparison:
    """A cell of the new run paired with its baseline cell, row id × epoch by row id × epoch."""

    experiment: str
    cell_id: str
    baseline_cell_id: str
    metrics: dict[str, MetricComparison] = field(default_factory=dict)
    paired: int = 0
    only_new: int = 0
    only_baseline: int = 0
    errors: int = 0
    changes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """The worst verdict of the cell's metrics (``unchanged`` with no metric compared)."""
        found = {m.verdict for m in self.metrics.values()}
        return next((v for v in VERDICTS if v in found), "unchanged")

    def metric(self, name: str) -> MetricComparison:
        from ..core.entities import canonical_metric_name

        wanted = canonical_metric_name(name)
        for key, value in self.metrics.items():
            if canonical_metric_name(key) == wanted:
                return value
        available = ", ".join(self.metrics) or "none"
        raise KeyError(f"no compared metric named {name!r}; available: {available}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "cell_id": self.cell_id,
            "baseline_cell_id": self.baseline_cell_id,
            "verdict": self.verdict,
            "paired": self.paired,
            "only_new": self.only_new,
            "only_baseline": self.only_baseline,
            "errors": self.errors,
            "changes": list(self.changes),
            "metrics": {n: m.to_dict() for n, m in self.metrics.items()},
        }


@dataclass
class Comparison:
    """A run compared with a baseline: matched cells, unmatched cells, Holm-adjusted verdicts."""

    run_id: str
    baseline_run_id: str
    margin: float
    alpha: float
    cells: list[CellComparison] = field(default_factory=list)
    unmatched_new: list[str] = field(default_factory=list)
    unmatched_baseline: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """The worst cell verdict (``unchanged`` when nothing was compared)."""
        found = {c.verdict for c in self.cells}
        return next((v for v in VERDICTS if v in found), "unchanged")

    @property
    def warnings(self) -> list[str]:
        return [
            f"{c.cell_id} {m.metric}: {m.warning}"
            for c in self.cells
            for m in c.metrics.values()
            if m.warning
        ]

    def cell(self, cell_id: str) -> CellComparison:
        for cell in self.cells:
            if cell.cell_id == cell_id:
                return cell
        known = ", ".join(c.cell_id for c in self.cells) or "none"
        raise KeyError(f"no compared cell {cell_id!r}; compared: {known}")

    def regressions(self, margin: float | None = None) -> list[tuple[CellComparison, str]]:
        """(cell, metric) pairs whose drop beyond ``margin`` is significant after Holm."""
        margin = self.margin if margin is None else margin
        return [
            (c, m.metric)
            for c in self.cells
            for m in c.metrics.values()
            if is_regression(m, self.alpha, margin)
        ]

    def assert_not_worse(
        self, metric: str, margin: float | None = None, *, strict: bool = False
    ) -> None:
        """Fail unless no cell's ``metric`` dropped by more than ``margin``.

        Default: fail when such a drop is significant after Holm. ``strict=True`` is the
        non-inferiority form: fail unless every interval's lower bound is above −margin.
        """
        __tracebackhide__ = True
        margin = self.margin if margin is None else margin
        check_margin(margin, "margin")
        if not self.cells:
            raise AssertionError(
                f"nothing compared against baseline {self.baseline_run_id}: no cell matched"
            )
        problems = []
        for cell in self.cells:
            m = cell.metric(metric)
            bad = not_noninferior(m, margin) if strict else is_regression(m, self.alpha, margin)
            if bad:
                problems.append(f"  {cell.cell_id}: {describe(m)}")
        if problems:
            kind = "non-inferiority not shown" if strict else "significant drop"
            raise AssertionError(
                f"{metric} vs baseline {self.baseline_run_id} (margin {margin:g}): {kind}\n"
                + "\n".join(problems)
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "baseline_run_id": self.baseline_run_id,
            "margin": self.margin,
            "alpha": self.alpha,
            "verdict": self.verdict,
            "cells": [c.to_dict() for c in self.cells],
            "unmatched_new": list(self.unmatched_new),
            "unmatched_baseline": list(self.unmatched_baseline),
        }


def check_margin(margin: float, where: str) -> None:
    from ..errors import ConfigurationError

    if not isinstance(margin, (int, float)) or not 0.0 <= margin <= 1.0:
        raise ConfigurationError(f"{where} must be a number in [0, 1], got {margin!r}")


def is_regression(m: MetricComparison, alpha: float, margin: float) -> bool:
    """A drop beyond ``margin`` that is significant after Holm."""
    return m.p_adjusted < alpha and m.difference < 0 and m.ci_high < -margin


def not_noninferior(m: MetricComparison, margin: float) -> bool:
    """True unless the interval's lower bound is above −``margin`` (no pairs: not shown)."""
    return not (m.ci_low > -margin) or math.isnan(m.ci_low)


def describe(m: MetricComparison) -> str:
    text = (
        f"Δ {number(m.difference, signed=True, missing='nan')} "
        f"[95% CI {number(m.ci_low, signed=True, missing='nan')}, "
        f"{number(m.ci_high, signed=True, missing='nan')}] "
        f"p={p_value(m.p_value, missing='nan')} (Holm {p_value(m.p_adjusted, missing='nan')}) "
        f"n={m.pairs} {m.verdict}"
    )
    return text + (f"; {m.warning}" if m.warning else "")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
