"""The one JSON form of a generation record round-trips, errors included."""

from __future__ import annotations

import json

from pytest_themis.core.entities import (
    CellSpec,
    GenerationError,
    GenerationRecord,
    GenerationTask,
    ModelSpec,
    SamplingConfig,
    TokenUsage,
)
from pytest_themis.core.records import record_from_dict, record_to_dict

TASK = GenerationTask(
    CellSpec(ModelSpec("m", "fake"), "p", SamplingConfig()),
    "row1",
    0,
    ({"role": "user", "content": "hi"},),
)


def _round_trip(record: GenerationRecord) -> GenerationRecord | None:
    return record_from_dict(TASK, json.loads(json.dumps(record_to_dict(record))))


def test_a_successful_record_round_trips_without_an_error_field() -> None:
    record = GenerationRecord(TASK, "4", TokenUsage(3, 1), 0.002, 0.25, "stop", attempts=2)
    assert "error" not in record_to_dict(record)
    assert _round_trip(record) == record


def test_an_error_record_round_trips() -> None:
    error = GenerationError("transient", "ServerError", "boom", 503)
    record = GenerationRecord(TASK, error=error, attempts=4)
    back = _round_trip(record)
    assert back == record and back is not None and not back.ok


def test_a_value_that_is_no_record_reads_as_none() -> None:
    assert record_from_dict(TASK, {"usage": None}) is None
    assert record_from_dict(TASK, {"text": 42}) is None


def test_worker_messages_carry_records_in_the_same_form() -> None:
    import pickle

    from pytest_themis.generation._worker import RecordDone

    error = GenerationError("permanent", "BadRequestError", "no", 400)
    for record in (
        GenerationRecord(TASK, "4", TokenUsage(3, 1), 0.002, 0.25, "stop", attempts=2),
        GenerationRecord(TASK, error=error, attempts=1),
    ):
        message = pickle.loads(pickle.dumps(RecordDone.of(7, record)))
        assert message.index == 7 and message.fields == record_to_dict(record)
        assert message.to_record(TASK) == record
