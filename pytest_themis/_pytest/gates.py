"""CI gates: ``--themis-fail-under`` thresholds and the ``--themis-max-errors`` error budget."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .options import FailUnder

if TYPE_CHECKING:  # pragma: no cover
    from ..core.reports import EvaluationReport

__all__ = [
    "GateResult",
    "error_budget_failure",
    "evaluate_gates",
    "gate_failures",
    "preset_gates",
]

_SHOWN_ERRORS = 5


@dataclass(frozen=True)
class GateResult:
    """One gate applied to one cell: the number compared, the threshold and the verdict."""

    metric: str | None
    threshold: float
    mode: str
    compared: float | None
    passed: bool
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        compared = self.compared
        if compared is not None and math.isnan(compared):
            compared = None
        return {
            "metric": self.metric,
            "op": ">=",
            "threshold": self.threshold,
            "mode": self.mode,
            "compared": compared,
            "passed": self.passed,
        }


def error_budget_failure(report: EvaluationReport, max_errors: int, label: str) -> str | None:
    """A message when the cell has more generation errors than ``max_errors``, else None."""
    if report.errors <= max_errors:
        return None
    lines = [
        f"{label}: {report.errors} of {report.total} generation(s) failed, more than "
        f"--themis-max-errors={max_errors} allows"
    ]
    for record in report.failures[:_SHOWN_ERRORS]:
        error = record.generation.error
        assert error is not None
        lines.append(f"  {record.task.task_id}: {error.type}: {error.message}")
    if report.errors > _SHOWN_ERRORS:
        lines.append(f"  ... and {report.errors - _SHOWN_ERRORS} more")
    if any(r.generation.error and r.generation.error.kind == "cache" for r in report.failures):
        lines.append("  (replay mode reads the cache only; rerun with --themis-cache=use first)")
    return "\n".join(lines)


def _one_gate(
    report: EvaluationReport, gate: FailUnder, primary_metric: str | None, mode: str
) -> GateResult:
    name = gate.metric or primary_metric
    if name is None:
        return GateResult(
            None, gate.value, mode, None, False,
            f"--themis-fail-under {gate.value:g}: this evaluation has no primary metric; "
            "name one, e.g. --themis-fail-under ExactMatch=0.8",
        )  # fmt: skip
    if name not in report.metrics:
        available = ", ".join(report.metrics) or "none"
        return GateResult(
            name, gate.value, mode, None, False,
            f"--themis-fail-under {name}={gate.value:g}: no metric {name!r} in this "
            f"evaluation; available: {available}",
        )  # fmt: skip
    compared = report.gate_value(name, ">=", mode)
    try:
        report.assert_metric(name, ">=", gate.value, gate=mode)
    except AssertionError as exc:
        message = f"--themis-fail-under {name}={gate.value:g} ({mode}) failed:\n{exc}"
        return GateResult(name, gate.value, mode, compared, False, message)
    return GateResult(name, gate.value, mode, compared, True)


def evaluate_gates(
    report: EvaluationReport,
    gates: Sequence[FailUnder],
    primary_metric: str | None,
    mode: str,
) -> list[GateResult]:
    """Every gate's result for ``report`` (``mode``: ``point`` compares the mean, ``lower`` the
    lower end of the 95% interval)."""
    return [_one_gate(report, gate, primary_metric, mode) for gate in gates]


def gate_failures(
    report: EvaluationReport,
    gates: Sequence[FailUnder],
    primary_metric: str | None,
    mode: str,
) -> list[str]:
    """Messages of the gates ``report`` does not pass (empty when all pass)."""
    return [
        r.message or "" for r in evaluate_gates(report, gates, primary_metric, mode) if not r.passed
    ]


def preset_gates(spec: Any, fail_under: Sequence[FailUnder]) -> list[FailUnder]:
    """Gates of a ``--themis-preset`` item: the ``--themis-fail-under`` ones, else the preset's
    default gate on its primary metric (``BenchmarkPreset.default_fail_under``)."""
    if fail_under:
        return list(fail_under)
    preset = getattr(spec, "preset", None)
    default = getattr(preset, "default_fail_under", None)
    if preset is None or default is None:
        return []
    return [FailUnder(str(preset.primary_metric), float(default))]
