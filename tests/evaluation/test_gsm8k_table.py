"""GSM8K answer extraction and exact numeric matching, as one table.

Each case runs the pipeline's own order (reasoning stripped, then GSM8KExtractor) and then
NumericMatch against the reference.
"""

from __future__ import annotations

import pytest

from pytest_themis.errors import ExtractionError
from pytest_themis.evaluation.extractors import GSM8KExtractor, strip_reasoning
from pytest_themis.evaluation.metrics.numeric_match import NumericMatch

GOLD_SOLUTION = (
    "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
    "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"
)

# (response, reference, expected prediction or None for an extraction failure, expected match)
CASES = [
    ("#### 18", "18", "18", True),
    ("16 - 3 - 4 = 9 eggs left. 9 * 2 = 18\n#### 18", "18", "18", True),
    ("The answer is 18.", "18", "18", True),
    ("so the answer is 18", "18", "18", True),
    ("THE ANSWER IS: 18", "18", "18", True),
    ("Answer: 18", "18", "18", True),
    ("**Answer:** 18", "18", "18", True),
    ("\\boxed{18}", "18", "18", True),
    ("So she earns $\\boxed{18}$ dollars.", "18", "18", True),
    ("$1,234.00", "1234", "1234", True),
    ("The total cost is $1,234.00 in the end.", "1234", "1234", True),
    ("#### $1,234", "#### 1234", "1234", True),
    ("The answer is 1,234", "#### 1,234", "1234", True),
    ("1,000,000", "1000000", "1000000", True),
    ("18.0", "18", "18", True),
    ("18.000", "18.0", "18", True),
    ("18.50", "18.5", "18.5", True),
    ("0.5", "0.5", "0.5", True),
    (".5", "0.5", "0.5", True),
    ("3.14159", "3.14159", "3.14159", True),
    ("007", "7", "7", True),
    ("-3", "-3", "-3", True),
    ("The temperature dropped to -3 degrees.", "-3", "-3", True),
    ("\u22127", "-7", "-7", True),
    ("The answer is -$5.", "-5", "-5", True),
    ("The balance is $-5", "-5", "-5", True),
    ("25%", "25", "25", True),
    ("The discount is 25%.", "25", "25", True),
    ("The answer is 18 apples", "18", "18", True),
    ("She has 18 cookies left.", "18", "18", True),
    ("18 kg", "18", "18", True),
    ("The answer is 18. She started with 5 and bought 13.", "18", "18", True),
    ("#### 18\nCheck: 5 + 13 = 18, and 2 more would be 20.", "18", "18", True),
    ("#### 72\nThe answer is 18", "72", "72", True),
    ("The answer is 5. Wait, that is wrong. The answer is 7.", "7", "7", True),
    ("First \\boxed{5}, then corrected to \\boxed{7}.", "7", "7", True),
    ("The answer is \\boxed{42}", "42", "42", True),
    ("The answer is 18 and not 19.", "18", "18", True),
    ("x = 12, y = 18", "18", "18", True),
    ("2 + 2 = 4", "4", "4", True),
    ("The v2 method gives 18", "18", "18", True),
    ("72", GOLD_SOLUTION, "72", True),
    ("She sold 72 clips.", 72, "72", True),
    ("18", 18.0, "18", True),
    # closed reasoning: numbers inside <think> are ignored
    ("<think>Maybe 12? Or 15?</think>The answer is 18", "18", "18", True),
    ("<think>I think 12</think>\n18", "18", "18", True),
    ("<thinking>12 + 3 = 15</thinking> Final: 18 dollars", "18", "18", True),
    ("Scratch work: 12 and 15 </think> So 18.", "18", "18", True),
    # wrong answers are extracted but do not match
    ("The answer is 17.", "18", "17", False),
    ("Total: 2,500 dollars and 50 cents", "2500", "50", False),
    ("18.01", "18", "18.01", False),
    ("-18", "18", "-18", False),
    # no answer at all
    ("<think>Let me compute 3 + 4 = 7", "7", None, False),
    ("No idea.", "18", None, False),
    ("", "18", None, False),
    ("The answer is eighteen.", "18", None, False),
    ("I cannot determine the answer.", "18", None, False),
]


def _extract(response: str) -> str | None:
    try:
        return GSM8KExtractor().extract(strip_reasoning(response))
    except ExtractionError:
        return None


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize(("response", "reference", "expected", "match"), CASES)
def test_gsm8k_case(response: str, reference: object, expected: str | None, match: bool) -> None:
    prediction = _extract(response)
    assert prediction == expected
    if prediction is None:
        return
    score = NumericMatch().compute(prediction, reference)
    assert score.value == (1.0 if match else 0.0)


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        ("18.0", "18", True),
        ("1,234", "1234", True),
        ("#### 18", "18", True),
        ("0.1", "0.10", True),
        ("0.30000000000000004", "0.3", False),
        ("1e3", "1000", False),  # no float parsing: "1e3" is not read as 1000
        ("12345678901234567891", "12345678901234567890", False),
    ],
)
def test_numeric_match_is_exact(left: str, right: str, equal: bool) -> None:
    assert NumericMatch().compute(left, right).value == (1.0 if equal else 0.0)


def test_numeric_match_reference_without_number_is_an_error() -> None:
    with pytest.raises(ValueError, match="reference"):
        NumericMatch().compute("18", "no number here")


def test_numeric_match_prediction_without_number_scores_zero() -> None:
    score = NumericMatch().compute("nothing", "18")
    assert score.value == 0.0
    assert score.details["unparsed_prediction"] is True


def test_huge_numbers_compare_without_int_conversion_limits() -> None:
    digits = "9" * 20_000
    assert NumericMatch().compute(digits, digits).value == 1.0
    assert NumericMatch().compute(digits + "8", digits).value == 0.0
