"""The simple metrics and the Metric base-class contract."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pytest_themis.core.entities import MetricScore
from pytest_themis.errors import ConfigurationError
from pytest_themis.evaluation.metrics import (
    Contains,
    ExactMatch,
    Metric,
    NumericMatch,
    ResponseLength,
)
from pytest_themis.evaluation.metrics.base import MetricItemError, coerce_score


@pytest.mark.parametrize(
    ("metric", "prediction", "reference", "value"),
    [
        (ExactMatch(), "Paris", "paris", 1.0),
        (ExactMatch(), "  New   York \n", "new york", 1.0),
        (ExactMatch(), "Paris.", "Paris", 0.0),
        (ExactMatch(case_sensitive=True), "Paris", "paris", 0.0),
        (ExactMatch(strip=False, normalize_whitespace=False), " 4", "4", 0.0),
        (ExactMatch(strip=False), " 4  2", " 4 2", 1.0),
        (ExactMatch(normalize_whitespace=False), "New  York", "New York", 0.0),
        (ExactMatch(), "4", 4, 1.0),
        (ExactMatch(), "NYC", ["New York", "nyc"], 1.0),
        (ExactMatch(), "LA", ("New York", "NYC"), 0.0),
    ],
)
def test_exact_match(metric: Metric, prediction: str, reference: Any, value: float) -> None:
    score = metric.compute(prediction, reference)
    assert isinstance(score, MetricScore) and score.value == value


def test_exact_match_without_reference_raises() -> None:
    with pytest.raises(ValueError, match="reference"):
        ExactMatch().compute("x", None)


def test_response_length_units_and_flags() -> None:
    assert ResponseLength().compute("four words in here") == 18.0
    assert ResponseLength(unit="words").compute("four words in\nhere") == 4.0
    assert ResponseLength.uses_raw_text and not ResponseLength.requires_reference
    with pytest.raises(ConfigurationError, match="unit='tokens'.*chars, words"):
        ResponseLength(unit="tokens")


def test_contains() -> None:
    assert Contains().compute("The capital is PARIS, of course.", "Paris") == 1.0
    assert Contains(case_sensitive=True).compute("The capital is PARIS.", "Paris") == 0.0
    assert Contains().compute("It is Lyon.", ["Paris", "lyon"]) == 1.0
    assert Contains().compute("It is Lyon.", "Paris") == 0.0
    assert Contains.uses_raw_text
    with pytest.raises(ValueError, match="non-empty reference"):
        Contains().compute("anything", "  ")


def test_numeric_match_name_and_details() -> None:
    score = NumericMatch().compute("1,234.0", "#### 1234")
    assert score.name == "NumericMatch" and score.value == 1.0
    assert score.details == {"prediction": "1234", "reference": "1234"}


def test_metric_names_default_to_the_class_name() -> None:
    class Custom(Metric):
        def compute(self, prediction: str, reference: Any) -> float:
            return 1.0

    class Named(Metric):
        name = "my_metric"

        def compute(self, prediction: str, reference: Any) -> float:
            return 1.0

    assert Custom().name == "Custom"
    assert Named().name == "my_metric"
    assert ExactMatch().to_dict()["name"] == "ExactMatch"


def test_default_score_batch_coerces_and_reports_the_failing_index() -> None:
    class Flaky(Metric):
        def compute(self, prediction: str, reference: Any) -> Any:
            if prediction == "boom":
                raise RuntimeError("cannot score")
            return prediction == reference

    scores = Flaky().score_batch([("a", "a"), ("a", "b")])
    assert [(s.name, s.value) for s in scores] == [("Flaky", 1.0), ("Flaky", 0.0)]
    with pytest.raises(MetricItemError) as info:
        Flaky().score_batch([("a", "a"), ("boom", "a")])
    assert info.value.index == 1 and "cannot score" in str(info.value.error)


@pytest.mark.parametrize("bad", ["0.5", None, math.nan, math.inf, MetricScore("x", math.nan)])
def test_coerce_score_rejects_non_numbers(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="finite number"):
        coerce_score("M", bad)


def test_coerce_score_renames_and_accepts_bools() -> None:
    assert coerce_score("M", True).value == 1.0
    renamed = coerce_score("M", MetricScore("other", 0.25, {"k": 1}))
    assert (renamed.name, renamed.value, renamed.details) == ("M", 0.25, {"k": 1})


def test_close_is_a_safe_no_op_by_default() -> None:
    metric = ExactMatch()
    metric.close()
    metric.close()
    assert metric.compute("a", "a").value == 1.0
