"""Builders for generation records, so scoring tests need no plan, provider or runner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_themis.core.entities import (
    CellSpec,
    GenerationError,
    GenerationRecord,
    GenerationTask,
    ModelSpec,
    SamplingConfig,
)

_CELL = CellSpec(
    model=ModelSpec(identifier="fake/echo", provider="fake"),
    template_name="plain",
    sampling=SamplingConfig(),
)

RecordFactory = Callable[..., GenerationRecord]


def build_record(
    text: str | None,
    reference: Any = None,
    *,
    row_id: str = "row-1",
    error: str | None = None,
) -> GenerationRecord:
    """A finished generation for ``row_id``; ``error`` makes it a failed one."""
    task = GenerationTask(
        cell=_CELL,
        row_id=row_id,
        sample_index=0,
        messages=({"role": "user", "content": "question"},),
        reference=reference,
    )
    failure = GenerationError("permanent", "BadRequestError", error) if error else None
    return GenerationRecord(task=task, text=None if failure else text, error=failure)


@pytest.fixture
def make_record() -> RecordFactory:
    return build_record
