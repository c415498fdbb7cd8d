"""Multiple-choice answers: the option a response commits to, and its accuracy.

:func:`find_choice` reads the letter a response *commits to*, in the forms models actually use —
``The answer is (C)``, ``**Answer:** C``, ``Answer: (C) Paris``, ``\\boxed{C}``,
``{"answer": "C"}``, a final line holding only ``C`` / ``(C)`` / ``**C**``, or a response that
opens with ``C.`` — after removing reasoning traces. A final statement that names two different
options (``the answer is B or C``) is no answer at all, never the first or the last of them.
:class:`ChoiceAccuracy` adds the option *text* as a last resort, only when exactly one option's
text appears in the final answer statement.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.entities import MetricScore
from ..errors import ConfigurationError, ExtractionError
from .extractors import Extractor, find_last_boxed, strip_reasoning
from .metrics.base import Metric

__all__ = ["ChoiceAccuracy", "ChoiceExtractor", "find_choice", "option_letters"]

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# "answer is", "answer:", "final answer", "correct option is", "I choose" … up to the line's end.
_STATEMENT = re.compile(
    r"(?:\b(?:final\s+)?answer\b|\bcorrect\s+(?:answer|option|choice)\b|\bI\s+(?:choose|pick)\b"
    r"|\boption\b\s+(?=\(?[A-Z]\)?\s*(?:is\s+correct|$)))"
    r"[*_\s]*(?:is|would\s+be|:|=|-)?[*_\s:]*(?P<tail>[^\n]*)",
    re.IGNORECASE,
)
_JSON_OBJECT = re.compile(r"\{[^{}]*\}")


def option_letters(count: int) -> str:
    """The letters of ``count`` options: ``option_letters(4) == "ABCD"``."""
    if not 1 <= count <= len(_LETTERS):
        raise ConfigurationError(f"a question needs 1 to 26 options, got {count}")
    return _LETTERS[:count]


def _letters_in(fragment: str, letters: str) -> list[str]:
    """Option letters named in ``fragment`` as stand-alone tokens: ``(C)``, ``C``, ``**C**``.

    A lone capital that is really a word ("A" in "A cat") is skipped when words follow it.
    """
    found: list[str] = []
    lower = letters.lower()
    pattern = rf"(?<![A-Za-z0-9])(?:\(([{letters}{lower}])\)|([{letters}]))(?![A-Za-z0-9])"
    for match in re.finditer(pattern, fragment):
        letter = (match.group(1) or match.group(2)).upper()
        after = fragment[match.end() :]
        if letter == "A" and "(" not in match.group(0) and re.match(r"\s+[a-z]", after):
            continue  # the article: "a cat", "A good choice …"
        found.append(letter)
    return found


def _from_statement(tail: str, letters: str) -> str | None:
    """The letter one answer statement names; ``""`` when it names two different letters."""
    head = re.split(r"(?<=[.!?])\s+(?=[A-Z][a-z])", tail.strip(), maxsplit=1)[0]
    named = _letters_in(head[:80], letters)
    if not named:
        return None
    first = named[0]
    # "(C) Paris", "C. Because …" keep only the letter; a second different letter is ambiguous
    # only when it stands as another choice ("B or C", "B, C", "B and C").
    others = {
        n for n in named[1:] if n != first and re.search(rf"\b(?:or|and|,|/)\s*\(?{n}\b", head)
    }
    return "" if others else first


def find_choice(text: str, letters: str = "ABCD") -> str | None:
    """The option letter ``text`` commits to, or None (no choice, or two different ones)."""
    body = strip_reasoning(text)
    statements = [m.group("tail") for m in _STATEMENT.finditer(body)]
    for tail in reversed(statements):
        choice = _from_statement(tail, letters)
        if choice == "":
            return None
        if choice is not None:
            return choice
    boxed = find_last_boxed(body)
    if boxed is not None:
        inner = re.sub(r"\\text(?:bf)?\{([^}]*)\}", r"\1", boxed).strip()
        named = set(_letters_in(inner, letters))
        if len(named) == 1:
            return named.pop()
        if len(named) > 1:
            return None
    found = _from_json(body, letters)
    return found if found is not None else _from_lines(body, letters)


def _from_json(body: str, letters: str) -> str | None:
    """The letter under an ``answer``-like key of the last JSON object that has one."""
    for blob in reversed(_JSON_OBJECT.findall(body)):
        try:
            value = json.loads(blob)
        except ValueError:
            continue
        if isinstance(value, dict):
            for key in ("answer", "final_answer", "choice", "option"):
                answer = value.get(key)
                if isinstance(answer, str) and answer.strip().strip("()").upper() in letters:
                    return answer.strip().strip("()").upper()
    return None


def _from_lines(body: str, letters: str) -> str | None:
    """A bare letter on the last line, or a response that opens with one."""
    lines = [line.strip() for line in body.strip().splitlines() if line.strip()]
    if not lines:
        return None
    last = re.sub(r"[*_`#>\s.:]", "", lines[-1])
    if re.fullmatch(rf"\(?[{letters}]\)?", last):
        return last.strip("()")
    opening = re.match(rf"\s*[*(\[]*([{letters}])(?:[).\]:*]|\s*$)", lines[0])
    if opening and len(lines) == 1:
        return opening.group(1)
    if opening and re.match(rf"\s*[*(\[]*[{letters}][).\]:]", lines[0]):
        return opening.group(1)
    return None


class ChoiceExtractor(Extractor):
    """The option letter a response commits to (see :func:`find_choice`)."""

    def __init__(self, letters: str = "ABCD") -> None:
        if not letters or not letters.isalpha() or letters != letters.upper():
            raise ConfigurationError(
                f"ChoiceExtractor letters must be capital letters such as 'ABCD', got {letters!r}"
            )
        self.letters = letters

    def extract(self, text: str) -> str:
        choice = find_choice(text, self.letters)
        if choice is None:
            raise ExtractionError(
                "the response commits to no single option; ask for a final line like "
                "'The answer is (C)'"
            )
        return choice


class ChoiceAccuracy(Metric):
    """1.0 when the response commits to the gold option.

    The reference is the gold letter, or a mapping ``{"answer": letter, "options": [texts]}``;
    with options, a response with no letter is matched by option text when exactly one option's
    text appears in its final answer statement. Reads the raw response, so it scores responses
    the extractor could not read.
    """

    uses_raw_text = True
    value_range = (0.0, 1.0)

    def compute(self, prediction: str, reference: Any) -> MetricScore:
        gold, options = _gold_and_options(reference)
        letters = option_letters(max(len(options), _LETTERS.index(gold) + 1))
        choice = find_choice(prediction, letters)
        how = "letter"
        if choice is None and options:
            choice = _by_option_text(prediction, options)
            how = "text" if choice else "none"
        return MetricScore(
            name=self.name,
            value=1.0 if choice == gold else 0.0,
            details={"choice": choice, "by": how},
        )


def _gold_and_options(reference: Any) -> tuple[str, Sequence[str]]:
    if isinstance(reference, Mapping):
        gold, options = reference.get("answer"), reference.get("options") or ()
    else:
        gold, options = reference, ()
    if not isinstance(gold, str) or len(gold.strip()) != 1 or gold.strip().upper() not in _LETTERS:
        raise ConfigurationError(f"ChoiceAccuracy needs a gold option letter, got {gold!r}")
    return gold.strip().upper(), [str(o) for o in options]


def _by_option_text(text: str, options: Sequence[str]) -> str | None:
    body = strip_reasoning(text)
    statements = [m.group("tail") for m in _STATEMENT.finditer(body)]
    target = statements[-1] if statements else body.strip().splitlines()[-1:] or [""]
    fragment = (target if isinstance(target, str) else target[0]).lower()
    hits = [
        i
        for i, option in enumerate(options)
        if option.strip()
        and re.search(rf"(?<!\w){re.escape(option.strip().lower())}(?!\w)", fragment)
    ]
    # Unambiguous only: one option's text, and not merely a part of another matching option.
    if len(hits) == 1:
        return _LETTERS[hits[0]]
    return None
