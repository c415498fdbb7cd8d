"""Per-item bookkeeping shared by marker tests and synthesized preset items."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from ..core.entities import CellSpec
from .gates import error_budget_failure, evaluate_gates, gate_failures
from .session import CellOutcome
from .summary import junit_properties

__all__ = [
    "OUTCOME_KEY",
    "PENDING_KEY",
    "ThemisCase",
    "attach_outcome",
    "check_errors",
    "check_gates",
    "check_sample",
]


#: The cell outcome an item read.
OUTCOME_KEY = pytest.StashKey[CellOutcome]()
#: Cell results (JSON) computed during an item's current phase, to attach to its next report.
PENDING_KEY = pytest.StashKey[list[str]]()


@dataclass(frozen=True)
class ThemisCase:
    """The parameter of one themis item: its spec, its cell and (per-sample mode) its row."""

    spec_key: str
    cell: CellSpec
    row_id: str | None = None
    sample_index: int = 0

    @property
    def per_sample(self) -> bool:
        return self.row_id is not None


def attach_outcome(
    item: pytest.Item, outcome: CellOutcome, fresh: bool, gates: list[Any] | None = None
) -> None:
    """Remember the cell on ``item``; queue its result for the controller when computed here.

    The result (and the cell's manifest entry) records how the cell fares against ``gates``
    (default: ``--themis-fail-under``).
    """
    item.stash[OUTCOME_KEY] = outcome
    state = item.config.pluginmanager.get_plugin("themis-state")  # this run's ThemisState
    if state is not None:
        record_gates(
            outcome, state.options.fail_under if gates is None else gates, state.options.gate
        )
    if fresh:
        pending = item.stash.setdefault(PENDING_KEY, [])
        pending.append(json.dumps(outcome.result, default=str))
    item.user_properties.extend(junit_properties(outcome.result))


def record_gates(outcome: CellOutcome, gates: list[Any], mode: str) -> None:
    """Store each gate's result (passed, the number compared) in the result and its manifest."""
    if not gates or "gates" in outcome.result:
        return
    results = [
        r.to_dict() for r in evaluate_gates(outcome.report, gates, outcome.primary_metric, mode)
    ]
    outcome.result["gates"] = results
    manifest = outcome.result.get("manifest") or {}
    for cell in manifest.get("cells", []):
        if cell.get("cell_id") == outcome.cell.cell_id:
            cell["gates"] = results


def _label(outcome: CellOutcome) -> str:
    return f"{outcome.spec.name} [{outcome.cell.cell_id}]"


def check_errors(outcome: CellOutcome, max_errors: int) -> None:
    """Fail the item when the cell has more generation errors than allowed."""
    __tracebackhide__ = True
    report = outcome.report
    if report.missing:
        pytest.fail(
            f"{_label(outcome)}: incomplete run, {report.missing} of "
            f"{report.total + report.missing} planned generation(s) produced no record; "
            "rerun to finish them (finished ones are cached)",
            pytrace=False,
        )
    message = error_budget_failure(report, max_errors, _label(outcome))
    if message:
        pytest.fail(message, pytrace=False)


def check_sample(outcome: CellOutcome, case: ThemisCase, max_errors: int) -> Any:
    """The scored record of a per-sample item; fail (or skip, within budget) on its error."""
    __tracebackhide__ = True
    assert case.row_id is not None
    record = outcome.sample(case.row_id, case.sample_index)
    if record is None:
        pytest.fail(
            f"{_label(outcome)}: row {case.row_id!r} is not in the dataset this test evaluated; "
            "per-sample items come from the marker's dataset, so an overriding themis_dataset "
            "fixture must keep the same row ids",
            pytrace=False,
        )
    error = record.generation.error
    if error is not None:
        message = f"{record.task.task_id}: {error.type}: {error.message}"
        if outcome.report.errors > max_errors:
            pytest.fail(message, pytrace=False)
        pytest.skip(f"generation error tolerated by --themis-max-errors: {message}")
    return record


def check_gates(outcome: CellOutcome, gates: list[Any], mode: str) -> None:
    __tracebackhide__ = True
    failures = gate_failures(outcome.report, gates, outcome.primary_metric, mode)
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)
