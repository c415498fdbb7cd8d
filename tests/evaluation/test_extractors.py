"""Extractors: normal answers, missing answers, bad configuration and hostile input."""

from __future__ import annotations

import re
import time

import pytest

from pytest_themis.errors import ConfigurationError, ExtractionError
from pytest_themis.evaluation.extractors import (
    BoxedExtractor,
    GSM8KExtractor,
    IdentityExtractor,
    JsonFieldExtractor,
    MathVerifyExtractor,
    MultipleChoiceExtractor,
    RegexExtractor,
    strip_reasoning,
)

HOSTILE = {
    "nested_braces": "\\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}",
    "unclosed_boxes": "\\boxed{" * 10_000,
    "big_latex": ("\\frac{\\sqrt{x^{2}+1}}{\\left(y-3\\right)} + " * 2_500)[:100_000],
    "dollars": "$" * 100_000,
    "digits": "1" * 100_000,
    "think_tags": "<think>" * 20_000,
    "answer_phrases": "the answer is " * 8_000,
    "parens": "\\(" * 50_000,
}


# --------------------------------------------------------------------------- strip_reasoning


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain answer", "plain answer"),
        ("<think>scratch 12</think>The answer is 18", "The answer is 18"),
        ("<THINK>a</THINK> b", "b"),
        ("<thinking>plan</thinking>\nresult", "result"),
        ("a <think>x</think> b <think>y</think> c", "a  b  c"),
        ("<think>outer <think>inner</think> still outer</think>done", "done"),
        ("reasoning that began in the prompt </think> final", "final"),
        ("1 < 2 and 3 > 2", "1 < 2 and 3 > 2"),
    ],
)
def test_strip_reasoning(text: str, expected: str) -> None:
    assert strip_reasoning(text) == expected


def test_unclosed_think_is_an_extraction_failure_naming_the_cause() -> None:
    with pytest.raises(ExtractionError, match="unclosed <think>.*max_tokens"):
        strip_reasoning("Sure. <think>Let me work out 3 + 4 = 7")


# --------------------------------------------------------------------------- identity / regex


def test_identity_strips_and_rejects_empty() -> None:
    assert IdentityExtractor().extract("  Paris \n") == "Paris"
    with pytest.raises(ExtractionError, match="empty"):
        IdentityExtractor().extract("   \n")


def test_regex_first_match_by_default_and_last_on_request() -> None:
    text = "Severity: Routine ... on review, Severity: Critical"
    pattern = r"Severity:\s*(Critical|Routine)"
    assert RegexExtractor(pattern).extract(text) == "Routine"
    assert RegexExtractor(pattern, which="last").extract(text) == "Critical"


def test_regex_named_group_flags_and_groupless_pattern() -> None:
    assert (
        RegexExtractor(r"answer:\s*(?P<ans>\w+)", group="ans", flags=re.I).extract("ANSWER: yes")
        == "yes"
    )
    assert RegexExtractor(r"\d+").extract("call 555 now") == "555"
    assert RegexExtractor(r"(a)(b)", group=2).extract("xab") == "b"


def test_regex_skips_matches_whose_group_is_empty() -> None:
    assert RegexExtractor(r"label=(\w*)").extract("label= label=ok") == "ok"


def test_regex_no_match_is_an_extraction_error_naming_the_pattern() -> None:
    with pytest.raises(ExtractionError, match=r"Severity"):
        RegexExtractor(r"Severity: (\w+)").extract("no verdict here")


def test_regex_that_does_not_compile_names_pattern_and_reason() -> None:
    with pytest.raises(ConfigurationError) as info:
        RegexExtractor(r"Answer: (\d+")
    message = str(info.value)
    assert "'Answer: (\\\\d+'" in message
    assert "missing ), unterminated subpattern" in message


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"pattern": r"(\d+)", "group": 3}, "group=3 does not exist"),
        ({"pattern": r"(?P<a>\d+)", "group": "b"}, "no group named 'b'"),
        ({"pattern": r"(\d+)", "which": "middle"}, "which='middle'"),
        ({"pattern": ""}, "non-empty"),
    ],
)
def test_regex_bad_configuration(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(fragment)):
        RegexExtractor(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize(
    ("text", "path", "expected"),
    [
        ('{"answer": "Paris"}', "answer", "Paris"),
        ('```json\n{"answer": {"city": "Paris"}}\n```', "answer.city", "Paris"),
        ('Here you go:\n```\n{"items": [{"v": 1}, {"v": 2}]}\n```\nBye', "items.1.v", "2"),
        ('Sure! {"score": 18, "ok": true} Hope that helps.', "score", "18"),
        ('{"ok": true}', "ok", "true"),
        ('{"values": [1, 2]}', "values", "[1,2]"),
        ('[{"a": "x"}, {"a": "y"}]', "-1.a", "y"),
    ],
)
def test_json_field(text: str, path: str, expected: str) -> None:
    assert JsonFieldExtractor(path).extract(text) == expected


def test_json_missing_path_names_the_path_and_what_was_found() -> None:
    with pytest.raises(ExtractionError) as info:
        JsonFieldExtractor("answer.city").extract('{"answer": {"town": "Paris"}}')
    message = str(info.value)
    assert "'answer.city'" in message and "'city'" in message and "'town'" in message


def test_json_list_index_out_of_range_is_missing() -> None:
    with pytest.raises(ExtractionError, match="'5'"):
        JsonFieldExtractor("items.5").extract('{"items": [1, 2]}')


def test_json_not_present_at_all() -> None:
    with pytest.raises(ExtractionError, match="no JSON document"):
        JsonFieldExtractor("answer").extract("The answer is Paris.")


def test_json_empty_path_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="path"):
        JsonFieldExtractor("  ")


# --------------------------------------------------------------------------- boxed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("So \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
        ("\\fbox{7}", "7"),
        ("first \\boxed{1} then \\boxed{ 2 }", "2"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("\\boxed {x^{2}}", "x^{2}"),
        ("done \\boxed{3} and a truncated \\boxed{4", "3"),
        ("\\boxed{\\boxed{5}}", "\\boxed{5}"),
        ("} stray } braces \\boxed{9}", "9"),
    ],
)
def test_boxed(text: str, expected: str) -> None:
    assert BoxedExtractor().extract(text) == expected


@pytest.mark.parametrize("text", ["no box", "\\boxed{", "\\boxed{}", "\\boxed 5"])
def test_boxed_missing(text: str) -> None:
    with pytest.raises(ExtractionError, match="boxed"):
        BoxedExtractor().extract(text)


# --------------------------------------------------------------------------- math-verify


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("We get $x = 2$ and finally \\boxed{\\dfrac{3}{4}}.", "\\dfrac{3}{4}"),
        ("The roots are $1$ and $2$, so the sum is $3$.", "3"),
        ("Thus \\(\\sqrt{2}\\) is the answer", "\\sqrt{2}"),
        ("$$\\pi r^2$$", "\\pi r^2"),
        ("It costs \\$5, so the answer is 12/5", "12/5"),
        ("final: -3.5", "-3.5"),
    ],
)
def test_math_verify_extractor(text: str, expected: str) -> None:
    assert MathVerifyExtractor().extract(text) == expected


def test_math_verify_extractor_missing() -> None:
    with pytest.raises(ExtractionError):
        MathVerifyExtractor().extract("I do not know.")


# --------------------------------------------------------------------------- multiple choice


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Answer: (C)", "C"),
        ("C.", "C"),
        ("(B) because it is larger", "B"),
        ("D", "D"),
        ("the answer is C", "C"),
        ("After elimination, the answer is option D.", "D"),
        ("**Answer:** B", "B"),
        ("answer: (d)", "D"),
        ("Options (A) and (B) fail, so pick (C)", "C"),
        ("The answer is $\\boxed{\\text{A}}$", "A"),
        ("The answer is a prime number, so (B)", "B"),
        ("Answer: A\nWait, no. Answer: C", "C"),
    ],
)
def test_multiple_choice(text: str, expected: str) -> None:
    assert MultipleChoiceExtractor().extract(text) == expected


@pytest.mark.parametrize("text", ["A man walks into a bar", "The answer is E", "no idea"])
def test_multiple_choice_without_a_valid_choice(text: str) -> None:
    with pytest.raises(ExtractionError, match="A, B, C, D"):
        MultipleChoiceExtractor().extract(text)


def test_multiple_choice_custom_choices_and_bad_ones() -> None:
    assert MultipleChoiceExtractor("ABCDE").extract("The answer is E") == "E"
    with pytest.raises(ConfigurationError, match="choices"):
        MultipleChoiceExtractor("AAB")
    with pytest.raises(ConfigurationError, match="choices"):
        MultipleChoiceExtractor("")


# --------------------------------------------------------------------------- description


def test_names_and_to_dict_carry_the_parameters() -> None:
    regex = RegexExtractor(r"(\d+)", which="last")
    assert regex.name == "RegexExtractor"
    assert regex.to_dict() == {
        "name": "RegexExtractor",
        "pattern": r"(\d+)",
        "group": 1,
        "flags": 0,
        "which": "last",
    }
    assert JsonFieldExtractor("a.b").to_dict() == {"name": "JsonFieldExtractor", "path": "a.b"}
    assert GSM8KExtractor().to_dict() == {"name": "GSM8KExtractor"}
    assert MultipleChoiceExtractor("abc").to_dict()["choices"] == "ABC"


# --------------------------------------------------------------------------- hostile input

EXTRACTORS = [
    IdentityExtractor(),
    RegexExtractor(r"answer is (\d+)"),
    JsonFieldExtractor("answer"),
    GSM8KExtractor(),
    BoxedExtractor(),
    MathVerifyExtractor(),
    MultipleChoiceExtractor(),
]


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_every_extractor_is_fast_on_hostile_input(name: str) -> None:
    text = HOSTILE[name]
    start = time.perf_counter()
    for extractor in EXTRACTORS:
        try:
            strip_reasoning(text)
        except ExtractionError:
            pass
        try:
            extractor.extract(text)
        except ExtractionError:
            pass
    elapsed = time.perf_counter() - start
    # Linear scans of ~100 KB take milliseconds; anything quadratic takes minutes.
    assert elapsed < 2.0, f"{name}: {elapsed:.2f}s"


def test_boxed_handles_deep_nesting_exactly() -> None:
    content = BoxedExtractor().extract(HOSTILE["nested_braces"])
    assert content == "{" * 10_000 + "1" + "}" * 10_000
