"""CI gates: ``--themis-fail-under`` thresholds and the ``--themis-max-errors`` error budget."""

from __future__ import annotations

from collections.abc import Sequence

from ..core.reports import EvaluationReport
from .options import FailUnder

__all__ = ["error_budget_failure", "gate_failures"]

_SHOWN_ERRORS = 5


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


def gate_failures(
    report: EvaluationReport,
    gates: Sequence[FailUnder],
    primary_metric: str | None,
    mode: str,
) -> list[str]:
    """Messages of the gates ``report`` does not pass (empty when all pass)."""
    failures: list[str] = []
    for gate in gates:
        name = gate.metric or primary_metric
        if name is None:
            failures.append(
                f"--themis-fail-under {gate.value:g}: this evaluation has no primary metric; "
                "name one, e.g. --themis-fail-under ExactMatch=0.8"
            )
            continue
        if name not in report.metrics:
            available = ", ".join(report.metrics) or "none"
            failures.append(
                f"--themis-fail-under {name}={gate.value:g}: no metric {name!r} in this "
                f"evaluation; available: {available}"
            )
            continue
        try:
            report.assert_metric(name, ">=", gate.value, gate=mode)
        except AssertionError as exc:
            failures.append(f"--themis-fail-under {name}={gate.value:g} ({mode}) failed:\n{exc}")
    return failures
