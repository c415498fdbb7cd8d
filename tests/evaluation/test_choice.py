"""Reading the option a response commits to, from real-looking responses."""

from __future__ import annotations

import pytest

from pytest_themis.errors import ConfigurationError
from pytest_themis.evaluation.choice import ChoiceAccuracy, ChoiceExtractor, find_choice
from pytest_themis.evaluation.extractors import ExtractionError

TEN = "ABCDEFGHIJ"

RESPONSES = [
    ("The answer is (C).", "C"),
    ("Let's think step by step. Cells divide ... Therefore, the answer is (B)", "B"),
    ("**Answer:** D", "D"),
    ("Answer: (C) Paris", "C"),
    ("The answer is: **C) 42**", "C"),
    ("The final answer is $\\boxed{E}$", "E"),
    ("So we get \\boxed{\\text{(B)}}", "B"),
    ('{"reasoning": "…", "answer": "F"}', "F"),
    ("After checking every option …\n\nC", "C"),
    ("After checking every option …\n\n**(G)**", "G"),
    ("C. Because photosynthesis needs light.", "C"),
    ("<think>The answer is (A)… no, wait.</think>The answer is (D)", "D"),
    ("A cat sat on the mat, so the answer is (H).", "H"),
    ("I think A is wrong.\nAnswer: B", "B"),
    ("Answer: J", "J"),
    ("The correct option is (I).", "I"),
    ("the answer is (c)", "C"),
    ("The answer is A. A is correct because the others fail.", "A"),
    ("Answer: B\nExplanation: A is wrong and C is wrong.", "B"),
    ("So option B is correct", "B"),
    # Two different final choices: no answer, never the first or last of them.
    ("The answer is B or C.", None),
    ("Answer: A, C", None),
    ("\\boxed{A, D}", None),
    # No choice at all.
    ("There is no clear answer here.", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), RESPONSES)
def test_find_choice(text: str, expected: str | None) -> None:
    assert find_choice(text, TEN) == expected


def test_letters_outside_the_options_are_not_choices() -> None:
    assert find_choice("The answer is (E).", "ABCD") is None


def test_extractor_raises_when_no_single_choice() -> None:
    extractor = ChoiceExtractor("ABCD")
    assert extractor.extract("Answer: (b)") == "B"
    with pytest.raises(ExtractionError, match="no single option"):
        extractor.extract("The answer is B or C.")
    with pytest.raises(ConfigurationError, match="capital letters"):
        ChoiceExtractor("abc")


OPTIONS = ["London", "Paris", "Rome", "Paris, Texas"]


@pytest.mark.parametrize(
    ("text", "value", "by"),
    [
        ("The answer is (B).", 1.0, "letter"),
        ("The answer is (A).", 0.0, "letter"),
        ("The answer is Rome.", 0.0, "text"),
        ("The answer is London.", 0.0, "text"),
        ("Final answer: Rome or London", 0.0, "none"),  # two options' texts: ambiguous
        ("I have no idea.", 0.0, "none"),
    ],
)
def test_accuracy_by_letter_then_unambiguous_text(text: str, value: float, by: str) -> None:
    score = ChoiceAccuracy().compute(text, {"answer": "B", "options": OPTIONS})
    assert (score.value, score.details["by"]) == (value, by)


def test_option_text_match_needs_exactly_one_option() -> None:
    # "Paris" is inside "Paris, Texas": both match, so the text cannot decide.
    score = ChoiceAccuracy().compute(
        "The answer is Paris, Texas", {"answer": "D", "options": OPTIONS}
    )
    assert score.details["choice"] is None


def test_accuracy_rejects_a_reference_without_a_letter() -> None:
    with pytest.raises(ConfigurationError, match="gold option letter"):
        ChoiceAccuracy().compute("The answer is (B).", {"answer": "Paris"})
