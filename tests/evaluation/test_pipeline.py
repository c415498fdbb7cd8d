"""EvaluationPipeline semantics: errors, extraction failures, raw-text metrics, metric failures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from pytest_themis.core.entities import GenerationRecord, MetricScore
from pytest_themis.core.reports import EvaluationReport
from pytest_themis.errors import ConfigurationError, ExtractionError, MetricError
from pytest_themis.evaluation.extractors import Extractor, GSM8KExtractor, RegexExtractor
from pytest_themis.evaluation.metrics import (
    Contains,
    ExactMatch,
    Metric,
    NumericMatch,
    ResponseLength,
)
from pytest_themis.evaluation.pipeline import EvaluationPipeline

RecordFactory = Callable[..., GenerationRecord]


class BatchCounter(Metric):
    """Records how it was called; scores 1.0 when prediction == reference."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, Any]]] = []
        self.closed = 0

    def compute(self, prediction: str, reference: Any) -> float:
        raise AssertionError("the pipeline must call score_batch")

    def score_batch(self, items: Sequence[tuple[str, Any]]) -> list[MetricScore]:
        self.batches.append(list(items))
        return [MetricScore(self.name, float(p == r)) for p, r in items]

    def close(self) -> None:
        self.closed += 1


def test_scores_every_record_with_every_metric(make_record: RecordFactory) -> None:
    pipeline = EvaluationPipeline(GSM8KExtractor(), [NumericMatch(), ResponseLength()])
    records = [
        make_record("So #### 18", "18", row_id="a"),
        make_record("The answer is 17", "18", row_id="b"),
    ]
    out = pipeline.evaluate(records)
    assert [r.row_id for r in out] == ["a", "b"]
    assert [r.prediction for r in out] == ["18", "17"]
    assert [r.scores["NumericMatch"].value for r in out] == [1.0, 0.0]
    assert [r.scores["ResponseLength"].value for r in out] == [10.0, 16.0]
    assert pipeline.metric_names == ["NumericMatch", "ResponseLength"]


def test_generation_errors_get_no_scores(make_record: RecordFactory) -> None:
    metric = BatchCounter()
    out = EvaluationPipeline(metrics=[metric]).evaluate(
        [make_record(None, "x", error="HTTP 400"), make_record("x", "x", row_id="ok")]
    )
    assert out[0].scores == {} and out[0].prediction is None and out[0].error is not None
    assert out[0].extraction_error is None
    assert out[1].scores["BatchCounter"].value == 1.0
    assert metric.batches == [[("x", "x")]]  # one call for the whole batch, errors excluded


def test_extraction_failure_scores_zero_but_raw_metrics_still_run(
    make_record: RecordFactory,
) -> None:
    pipeline = EvaluationPipeline(
        RegexExtractor(r"Final: (\w+)"), [ExactMatch(), Contains(), ResponseLength()]
    )
    (rec,) = pipeline.evaluate([make_record("I think it is Paris", "Paris")])
    assert rec.prediction is None
    assert "Final" in (rec.extraction_error or "")
    assert rec.scores["ExactMatch"].value == 0.0
    assert rec.scores["ExactMatch"].details == {"extraction_failed": True}
    assert rec.scores["Contains"].value == 1.0
    assert rec.scores["ResponseLength"].value == float(len("I think it is Paris"))


def test_reasoning_is_stripped_before_extraction(make_record: RecordFactory) -> None:
    pipeline = EvaluationPipeline(GSM8KExtractor(), [NumericMatch()])
    closed, unclosed = pipeline.evaluate(
        [
            make_record("<think>maybe 12</think>The answer is 18", "18", row_id="closed"),
            make_record("<think>maybe 12, or 18", "18", row_id="unclosed"),
        ]
    )
    assert closed.prediction == "18" and closed.scores["NumericMatch"].value == 1.0
    assert unclosed.prediction is None and "unclosed <think>" in (unclosed.extraction_error or "")
    assert unclosed.scores["NumericMatch"].value == 0.0


def test_report_counts_errors_and_extraction_failures(make_record: RecordFactory) -> None:
    pipeline = EvaluationPipeline(GSM8KExtractor(), [NumericMatch()])
    out = pipeline.evaluate(
        [
            make_record("#### 3", "3", row_id="right"),
            make_record("no number", "3", row_id="unparsable"),
            make_record(None, "3", row_id="failed", error="HTTP 500"),
        ]
    )
    report = EvaluationReport.from_records(out, pipeline.metric_names)
    agg = report.metrics["numeric_match"]
    assert (agg.count, agg.mean) == (2, 0.5)
    assert (report.errors, report.extraction_failures) == (1, 1)


def test_metric_that_raises_names_metric_row_and_cause(make_record: RecordFactory) -> None:
    class Exploding(Metric):
        def compute(self, prediction: str, reference: Any) -> float:
            if prediction == "bad":
                raise ZeroDivisionError("division by zero in judge")
            return 1.0

    pipeline = EvaluationPipeline(metrics=[Exploding()])
    with pytest.raises(MetricError) as info:
        pipeline.evaluate(
            [make_record("ok", "x", row_id="q1"), make_record("bad", "x", row_id="q2")]
        )
    message = str(info.value)
    assert "Exploding" in message and "'q2'" in message and "division by zero in judge" in message
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_custom_batch_metric_that_raises_lists_the_rows(make_record: RecordFactory) -> None:
    class BrokenBatch(BatchCounter):
        def score_batch(self, items: Sequence[tuple[str, Any]]) -> list[MetricScore]:
            raise RuntimeError("judge endpoint down")

    with pytest.raises(MetricError, match=r"BrokenBatch.*'a', 'b'.*judge endpoint down"):
        EvaluationPipeline(metrics=[BrokenBatch()]).evaluate(
            [make_record("x", "x", row_id="a"), make_record("y", "y", row_id="b")]
        )


@pytest.mark.parametrize("bad", ["yes", None, float("nan")])
def test_metric_returning_a_non_number_is_a_metric_error(
    make_record: RecordFactory, bad: Any
) -> None:
    class Weird(Metric):
        def compute(self, prediction: str, reference: Any) -> Any:
            return bad

    with pytest.raises(MetricError, match=r"Weird.*'r7'.*finite number"):
        EvaluationPipeline(metrics=[Weird()]).evaluate([make_record("x", "x", row_id="r7")])


def test_wrong_number_of_scores_is_a_metric_error(make_record: RecordFactory) -> None:
    class Short(BatchCounter):
        def score_batch(self, items: Sequence[tuple[str, Any]]) -> list[MetricScore]:
            return []

    with pytest.raises(MetricError, match="0 scores for 1 items"):
        EvaluationPipeline(metrics=[Short()]).evaluate([make_record("x", "x")])


def test_missing_reference_is_reported_with_the_fix(make_record: RecordFactory) -> None:
    pipeline = EvaluationPipeline(metrics=[ExactMatch(), ResponseLength()])
    assert pipeline.requires_reference
    with pytest.raises(MetricError, match=r"ExactMatch.*'row-1'.*reference_field"):
        pipeline.evaluate([make_record("x", None)])
    no_ref = EvaluationPipeline(metrics=[ResponseLength()])
    assert not no_ref.requires_reference
    assert no_ref.evaluate([make_record("abc", None)])[0].scores["ResponseLength"].value == 3.0


def test_extractor_bug_is_not_silently_scored_zero(make_record: RecordFactory) -> None:
    class Buggy(Extractor):
        def extract(self, text: str) -> str:
            raise KeyError("oops")

    with pytest.raises(MetricError, match=r"Buggy.*'row-1'.*ExtractionError"):
        EvaluationPipeline(Buggy(), [ExactMatch()]).evaluate([make_record("x", "x")])


def test_custom_extractor_signalling_no_answer(make_record: RecordFactory) -> None:
    class Never(Extractor):
        def extract(self, text: str) -> str:
            raise ExtractionError("nothing here")

    (rec,) = EvaluationPipeline(Never(), [ExactMatch()]).evaluate([make_record("x", "x")])
    assert rec.extraction_error == "nothing here"


def test_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="at least one metric"):
        EvaluationPipeline()
    with pytest.raises(ConfigurationError, match="several metrics named ExactMatch"):
        EvaluationPipeline(metrics=[ExactMatch(), ExactMatch(case_sensitive=True)])
    with pytest.raises(ConfigurationError, match="unknown metric 'blue'"):
        EvaluationPipeline(metrics=["blue"])


def test_names_are_accepted_in_place_of_instances(make_record: RecordFactory) -> None:
    pipeline = EvaluationPipeline("gsm8k", ["numeric_match"])
    assert isinstance(pipeline.extractor, GSM8KExtractor)
    assert pipeline.evaluate([make_record("#### 4", "4")])[0].scores["NumericMatch"].value == 1.0


def test_fingerprint_is_stable_and_tracks_configuration() -> None:
    base = EvaluationPipeline(RegexExtractor(r"(\d+)"), [ExactMatch()])
    same = EvaluationPipeline(RegexExtractor(r"(\d+)"), [ExactMatch()])
    assert base.fingerprint == same.fingerprint and len(base.fingerprint) == 64
    variants = [
        EvaluationPipeline(RegexExtractor(r"(\d+)", which="last"), [ExactMatch()]),
        EvaluationPipeline(RegexExtractor(r"(\d+)"), [ExactMatch(case_sensitive=True)]),
        EvaluationPipeline(RegexExtractor(r"(\d+)"), [ExactMatch(), ResponseLength()]),
        EvaluationPipeline(None, [ExactMatch()]),
    ]
    assert len({base.fingerprint, *(v.fingerprint for v in variants)}) == 5
    assert base.to_dict()["extractor"]["pattern"] == r"(\d+)"


def test_close_closes_every_metric() -> None:
    first, second = BatchCounter(), ResponseLength()
    with EvaluationPipeline(metrics=[first, second]) as pipeline:
        assert pipeline.metrics == [first, second]
    assert first.closed == 1


def test_custom_component_settings_reach_the_fingerprint() -> None:
    class Judge(Metric):
        def __init__(self, judge_model: str) -> None:
            self.judge_model = judge_model
            self._client = object()  # private and not plain JSON: never part of the description

        def compute(self, prediction: str, reference: Any) -> float:
            return 1.0

    small, large = Judge("small-judge"), Judge("large-judge")
    assert small.to_dict() == {"name": "Judge", "judge_model": "small-judge"}
    assert (
        EvaluationPipeline(metrics=[small]).fingerprint
        != EvaluationPipeline(metrics=[large]).fingerprint
    )
