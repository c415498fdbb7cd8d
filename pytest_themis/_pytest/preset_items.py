"""Synthesized items for ``--themis-preset NAME``: one per cell, no test file needed."""

from __future__ import annotations

from typing import Any

import pytest

from .gates import preset_gates
from .items import ThemisCase, attach_outcome, check_errors, check_gates
from .session import ThemisSession
from .spec import build_preset_spec

__all__ = ["PresetCollector", "PresetItem", "preset_items"]

COLLECTOR_NAME = "themis-preset"


class PresetCollector(pytest.Collector):
    """Holds the items of every ``--themis-preset``; attached to the session, not to a file."""

    def __init__(self, *, session_state: ThemisSession, presets: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session_state = session_state
        self.presets = presets

    def collect(self) -> list[pytest.Item]:
        items: list[pytest.Item] = []
        for preset in self.presets:
            spec = build_preset_spec(preset, self.session_state.options)
            key = f"{COLLECTOR_NAME}::{preset}"
            spec = self.session_state.register(key, spec)
            for cell in spec.cells:
                name = f"{preset}[{cell.cell_id}]"
                items.append(
                    PresetItem.from_parent(
                        self, name=name, nodeid=f"{self.nodeid}::{name}", case=ThemisCase(key, cell)
                    )
                )
        return items


class PresetItem(pytest.Item):
    """Runs one cell of a preset and applies the CI gates."""

    def __init__(self, *, case: ThemisCase, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.add_marker("themis")

    @property
    def session_state(self) -> ThemisSession:
        parent = self.parent
        assert isinstance(parent, PresetCollector)
        return parent.session_state

    def runtest(self) -> None:
        state = self.session_state
        spec = state.specs[self.case.spec_key]
        rows = state.load_rows(spec.source)
        pipeline = state.build_pipeline(state.default_extractor(spec), state.default_metrics(spec))
        storage = state.default_storage()
        backend = state.default_backend()
        outcome, fresh = state.run_cell(
            spec, self.case.cell, rows, pipeline, backend=backend, storage=storage, label=self.name
        )
        gates = preset_gates(spec, state.options.fail_under)
        attach_outcome(self, outcome, fresh, gates)
        check_errors(outcome, state.options.max_errors)
        check_gates(outcome, gates, state.options.gate)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, pytest.fail.Exception):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"themis preset {self.name}"


def preset_items(session: pytest.Session, state: ThemisSession) -> list[pytest.Item]:
    """Collect the items of every ``--themis-preset`` and report them as collected."""
    collector = PresetCollector.from_parent(
        session,
        name=COLLECTOR_NAME,
        nodeid=COLLECTOR_NAME,
        session_state=state,
        presets=list(dict.fromkeys(state.options.presets)),
    )
    items = collector.collect()
    report = pytest.CollectReport(collector.nodeid, "passed", None, list(items))
    session.ihook.pytest_collectreport(report=report)
    return items
