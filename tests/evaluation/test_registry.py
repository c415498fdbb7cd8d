"""Metric and extractor registries: names, aliases, options and errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_themis.errors import ConfigurationError
from pytest_themis.evaluation import (
    get_extractor,
    get_metric,
    list_extractors,
    list_metrics,
    register_extractor,
    register_metric,
)
from pytest_themis.evaluation.extractors import (
    BoxedExtractor,
    Extractor,
    GSM8KExtractor,
    IdentityExtractor,
    JsonFieldExtractor,
    MathVerifyExtractor,
    MultipleChoiceExtractor,
    RegexExtractor,
)
from pytest_themis.evaluation.metrics import (
    Contains,
    ExactMatch,
    MathVerifyAccuracy,
    Metric,
    NumericMatch,
    ResponseLength,
)
from pytest_themis.evaluation.registry import _EXTRACTORS, _METRICS


@pytest.fixture
def clean_registries() -> Iterator[None]:
    saved = (dict(_METRICS._entries), dict(_EXTRACTORS._entries))
    yield
    _METRICS._entries.clear()
    _METRICS._entries.update(saved[0])
    _EXTRACTORS._entries.clear()
    _EXTRACTORS._entries.update(saved[1])


@pytest.mark.parametrize("name", ["exact_match", "ExactMatch", "exact-match", "EXACT_MATCH"])
def test_metric_name_spellings(name: str) -> None:
    assert type(get_metric(name)) is ExactMatch


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("math_verify_accuracy", MathVerifyAccuracy),
        ("MathVerifyAccuracy", MathVerifyAccuracy),
        ("math_verify", MathVerifyAccuracy),
        ("response_length", ResponseLength),
        ("contains", Contains),
        ("numeric_match", NumericMatch),
    ],
)
def test_builtin_metrics(name: str, cls: type[Metric]) -> None:
    assert type(get_metric(name)) is cls


def test_metric_options_instances_and_classes() -> None:
    metric = get_metric("exact_match", case_sensitive=True)
    assert isinstance(metric, ExactMatch) and metric.case_sensitive
    assert get_metric(metric) is metric
    assert isinstance(get_metric(ResponseLength, unit="words"), ResponseLength)


def test_list_metrics() -> None:
    assert list_metrics() == [
        "choice_accuracy",
        "code_execution",
        "contains",
        "exact_match",
        "llm_judge",
        "math_verify_accuracy",
        "numeric_match",
        "response_length",
    ]


def test_unknown_metric_lists_the_available_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        get_metric("bleu")
    message = str(info.value)
    assert "'bleu'" in message
    for name in list_metrics():
        assert name in message


def test_bad_metric_options_name_the_metric() -> None:
    with pytest.raises(ConfigurationError, match="exact_match.*colour"):
        get_metric("exact_match", colour="red")
    with pytest.raises(ConfigurationError, match="instance"):
        get_metric(ExactMatch(), case_sensitive=True)
    with pytest.raises(ConfigurationError, match="int"):
        get_metric(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "kwargs", "cls"),
    [
        ("identity", {}, IdentityExtractor),
        ("regex", {"pattern": r"(\d+)"}, RegexExtractor),
        ("json_field", {"path": "a"}, JsonFieldExtractor),
        ("gsm8k", {}, GSM8KExtractor),
        ("GSM8K", {}, GSM8KExtractor),
        ("boxed", {}, BoxedExtractor),
        ("math_verify", {}, MathVerifyExtractor),
        ("multiple-choice", {"choices": "AB"}, MultipleChoiceExtractor),
    ],
)
def test_builtin_extractors(name: str, kwargs: dict[str, Any], cls: type[Extractor]) -> None:
    assert type(get_extractor(name, **kwargs)) is cls


def test_list_and_unknown_extractors() -> None:
    assert list_extractors() == [
        "boxed",
        "choice",
        "code",
        "gsm8k",
        "identity",
        "json_field",
        "math_verify",
        "multiple_choice",
        "regex",
    ]
    with pytest.raises(ConfigurationError) as info:
        get_extractor("xml_field")
    assert "'xml_field'" in str(info.value) and "json_field" in str(info.value)


def test_extractor_construction_errors_pass_through() -> None:
    with pytest.raises(ConfigurationError, match="does not compile"):
        get_extractor("regex", pattern="(")
    with pytest.raises(ConfigurationError, match="regex.*pattern"):
        get_extractor("regex")


def test_register_metric(clean_registries: None) -> None:
    class Always(Metric):
        def compute(self, prediction: str, reference: Any) -> float:
            return 1.0

    register_metric("always_one", Always)
    assert isinstance(get_metric("AlwaysOne"), Always)
    assert "always_one" in list_metrics()
    with pytest.raises(ConfigurationError, match="already registered"):
        register_metric("always-one", Always)
    register_metric("always-one", ExactMatch, overwrite=True)
    assert isinstance(get_metric("always_one"), ExactMatch)


def test_register_rejects_bad_factories(clean_registries: None) -> None:
    with pytest.raises(ConfigurationError, match="callable"):
        register_metric("broken", "not a factory")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="non-empty"):
        register_metric("", ExactMatch)
    register_extractor("wrong_type", lambda: "I am a string")
    with pytest.raises(ConfigurationError, match="returned str; expected a Extractor instance"):
        get_extractor("wrong_type")


def test_register_extractor(clean_registries: None) -> None:
    register_extractor("upper", lambda: RegexExtractor(r"[A-Z]+"))
    assert get_extractor("upper").extract("abc DEF") == "DEF"


def test_scoring_modules_do_not_import_heavy_libraries() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pytest_themis.evaluation import get_metric, get_extractor\n"
        "from pytest_themis.evaluation.pipeline import EvaluationPipeline\n"
        "import pytest_themis.evaluation.metrics\n"
        "EvaluationPipeline(get_extractor('math_verify'), [get_metric('math_verify')])\n"
        "print(sorted(m for m in ('math_verify', 'sympy', 'latex2sympy2_extended', 'litellm')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
