"""Hostile model output (100 KB of LaTeX, 10,000 nested braces) is scored within the timeout."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from pytest_themis.evaluation import get_extractor
from pytest_themis.evaluation.extractors import RegexExtractor
from pytest_themis.evaluation.metrics.math_verify import MathVerifyAccuracy

pytestmark = pytest.mark.timeout(120)

TIMEOUT = 2.0
_LATEX_UNIT = r"\frac{\sqrt{x^{2}+\alpha_{1}}}{\int_{0}^{\infty} e^{-t^{2}}\,dt} + \boxed{"
HOSTILE = {
    "latex_100kb": (_LATEX_UNIT * (100_000 // len(_LATEX_UNIT) + 1))[:100_000],
    "nested_braces": "\\boxed{" + "{" * 10_000 + "42" + "}" * 10_000 + "}",
    "unclosed_braces": "The answer is \\boxed{" + "{" * 10_000 + "42",
    "nested_fracs": "\\frac{" * 3_000 + "1" + "}{2}" * 3_000,
}
EXTRACTORS = ["identity", "boxed", "gsm8k", "math_verify", "multiple_choice", "json_field"]


@pytest.fixture(scope="module")
def metric() -> Iterator[MathVerifyAccuracy]:
    """One warm worker: later timings measure scoring, not the worker's start-up imports."""
    metric = MathVerifyAccuracy(timeout=TIMEOUT, workers=1)
    try:
        warm = metric.compute("x + 1", "1 + x")  # needs a worker (no in-process fast path)
        assert warm.value == 1.0 and "fast_path" not in warm.details
        yield metric
    finally:
        metric.close()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_math_verify_accuracy_gives_up_in_time(metric: MathVerifyAccuracy, name: str) -> None:
    started = time.perf_counter()
    score = metric.compute(HOSTILE[name], "42")
    elapsed = time.perf_counter() - started
    assert elapsed < TIMEOUT + 1.5, f"{name}: {elapsed:.1f}s"
    assert score.value == 0.0
    # The overrunning worker was replaced: a normal item still gets a real verdict.
    assert metric.compute("2 \\cdot x", "x + x").value == 1.0


@pytest.mark.parametrize("extractor", EXTRACTORS)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_extractors_finish_quickly(extractor: str, name: str) -> None:
    options = {"path": "answer"} if extractor == "json_field" else {}
    instance = get_extractor(extractor, **options)
    started = time.perf_counter()
    try:
        instance.extract(HOSTILE[name])
    except Exception as exc:  # noqa: BLE001 - only an ExtractionError is acceptable
        from pytest_themis.errors import ExtractionError

        assert isinstance(exc, ExtractionError), f"{extractor} raised {exc!r}"
    assert time.perf_counter() - started < TIMEOUT


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_backtracking_regex_on_hostile_text_finishes(name: str) -> None:
    extractor = RegexExtractor(r"answer is\s*\\boxed\{(.*)\}")
    started = time.perf_counter()
    try:
        extractor.extract(HOSTILE[name])
    except Exception as exc:  # noqa: BLE001
        from pytest_themis.errors import ExtractionError

        assert isinstance(exc, ExtractionError), repr(exc)
    assert time.perf_counter() - started < TIMEOUT
