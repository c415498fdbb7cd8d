"""Extractors for final answers: ``\\boxed{}``, GSM8K's ``####``, math spans, multiple choice."""

from __future__ import annotations

import re
from typing import Any

from ...errors import ConfigurationError, ExtractionError
from .._numbers import first_number, last_number
from .base import Extractor, preview

__all__ = [
    "BoxedExtractor",
    "GSM8KExtractor",
    "MathVerifyExtractor",
    "MultipleChoiceExtractor",
    "find_last_boxed",
    "find_last_math",
    "gsm8k_answer",
]


# --------------------------------------------------------------------------- \boxed{...}

_BOX_TOKEN = re.compile(r"\\(?:boxed|fbox)\s*\{|[{}]")


def find_last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{…}`` / ``\\fbox{…}``, brace-balanced, or None.

    One left-to-right pass over the braces: linear in ``len(text)`` whatever the nesting.
    When boxes nest, the outermost one that closes last wins.
    """
    if "\\boxed" not in text and "\\fbox" not in text:
        return None
    depth = 0
    openers: list[tuple[int, int]] = []  # (depth inside the box, content start)
    best: tuple[int, int] | None = None
    for match in _BOX_TOKEN.finditer(text):
        token = match.group()
        if token == "}":
            if depth == 0:
                continue
            if openers and openers[-1][0] == depth:
                _, start = openers.pop()
                best = (start, match.start())
            depth -= 1
        else:
            depth += 1
            if token != "{":
                openers.append((depth, match.end()))
    if best is None:
        return None
    return text[best[0] : best[1]].strip()


class BoxedExtractor(Extractor):
    """The content of the last ``\\boxed{…}`` or ``\\fbox{…}``, brace-balanced.

    ``\\boxed{\\frac{1}{2}}`` → ``\\frac{1}{2}``.
    """

    def extract(self, text: str) -> str:
        content = find_last_boxed(text)
        if not content:
            raise ExtractionError(
                f"no complete \\boxed{{...}} answer in the response {preview(text)}; ask the "
                "model to put its final answer in \\boxed{}"
            )
        return content


# --------------------------------------------------------------------------- GSM8K

_HASHES = re.compile(r"####")
_ANSWER_IS = re.compile(r"\banswer\b[*\s]*(?:is\b|:)", re.IGNORECASE)


def _rest_of_line(text: str, start: int) -> str:
    end = text.find("\n", start)
    return text[start:] if end < 0 else text[start:end]


def _last_match(regex: re.Pattern[str], text: str) -> re.Match[str] | None:
    last = None
    for last in regex.finditer(text):  # noqa: B007 - keep the last one
        pass
    return last


def gsm8k_answer(text: str) -> str | None:
    """The GSM8K answer in ``text`` as a canonical number string, or None.

    Precedence: last ``#### X``; last "the answer is X"; last ``\\boxed{X}``; last number.
    """
    marker = _last_match(_HASHES, text)
    if marker is not None:
        found = first_number(_rest_of_line(text, marker.end()))
        if found is not None:
            return found
    phrase = _last_match(_ANSWER_IS, text)
    if phrase is not None:
        found = first_number(_rest_of_line(text, phrase.end()))
        if found is not None:
            return found
    boxed = find_last_boxed(text)
    if boxed:
        found = first_number(boxed)
        if found is not None:
            return found
    return last_number(text)


class GSM8KExtractor(Extractor):
    """Final numeric answer of a grade-school math solution, canonicalised.

    ``"$1,234.00"`` → ``"1234"``, ``"18.0"`` → ``"18"``, ``"-3"`` → ``"-3"``,
    ``"2.50"`` → ``"2.5"``.
    """

    def extract(self, text: str) -> str:
        answer = gsm8k_answer(text)
        if answer is None:
            raise ExtractionError(
                f"no numeric answer in the response {preview(text)}; the prompt should ask "
                "for a final line like '#### 42'"
            )
        return answer


# --------------------------------------------------------------------------- math-verify

_MATH_TOKEN = re.compile(r"\\\$|\$\$|\$|\\\(|\\\)|\\\[|\\\]")
_MATH_CLOSERS = {"$$": "$$", "$": "$", "\\(": "\\)", "\\[": "\\]"}
_SIMPLE_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:\s*/\s*\d+)?", re.ASCII)


def find_last_math(text: str) -> str | None:
    """Content of the last complete ``$…$``, ``$$…$$``, ``\\(…\\)`` or ``\\[…\\]`` (linear)."""
    opener: str | None = None
    start = 0
    last: str | None = None
    for match in _MATH_TOKEN.finditer(text):
        token = match.group()
        if token == "\\$":
            continue
        if opener is None:
            if token in _MATH_CLOSERS:
                opener, start = token, match.end()
        elif token == _MATH_CLOSERS[opener]:
            content = text[start : match.start()].strip()
            if content:
                last = content
            opener = None
    return last


class MathVerifyExtractor(Extractor):
    """The answer string math-verify should parse: last ``\\boxed{}``, else last ``$…$``, else
    the last number. Parsing happens later, inside :class:`MathVerifyAccuracy`'s workers."""

    def extract(self, text: str) -> str:
        answer = find_last_boxed(text) or find_last_math(text)
        if not answer:
            number = _last_match(_SIMPLE_NUMBER, text)
            answer = number.group().replace(" ", "") if number else None
        if not answer:
            raise ExtractionError(
                f"no \\boxed{{}}, $...$ or number in the response {preview(text)}; ask the "
                "model to put its final answer in \\boxed{}"
            )
        return answer


# --------------------------------------------------------------------------- multiple choice


class MultipleChoiceExtractor(Extractor):
    """The chosen option letter: ``"Answer: (C)"``, ``"C."``, ``"the answer is C"`` → ``"C"``.

    Precedence: last "answer is/: X"; last ``\\boxed{X}``; a letter opening the response
    (``"C."``, ``"(C)"``, ``"C)"``); the last parenthesised ``(X)``. Letters must be upper case
    unless parenthesised, so "the answer is a prime" does not read as option A.
    """

    def __init__(self, choices: str = "ABCD") -> None:
        letters = "".join(choices) if not isinstance(choices, str) else choices
        if (
            not letters
            or not all(c.isascii() and c.isalnum() for c in letters)
            or len(set(letters.upper())) != len(letters)
        ):
            raise ConfigurationError(
                f"MultipleChoiceExtractor choices must be distinct letters/digits such as "
                f"'ABCD', got {choices!r}"
            )
        self.choices = letters.upper()
        cls = "[" + re.escape(self.choices) + "]"
        cls_any = "[" + re.escape(self.choices + self.choices.lower()) + "]"
        self._answer_kw = re.compile(r"\banswer\b[*\s]*(?:is\b|:)", re.IGNORECASE)
        self._answer_tail = re.compile(
            rf"[*\s:]*(?:(?i:option|choice)\s+)?(?:\(({cls_any})\)|({cls})(?!\w))"
        )
        self._head = re.compile(rf"\s*[*(\[]*({cls})(?:[).\]:*]|[ \t]*(?:\n|$))")
        self._paren = re.compile(rf"\(({cls_any})\)")
        self._boxed = re.compile(rf"(?:\\text(?:bf)?\{{)?\(?({cls_any})\)?\}}?")

    def params(self) -> dict[str, Any]:
        return {"choices": self.choices}

    def extract(self, text: str) -> str:
        letter = self._from_answer_phrase(text)
        if letter is None:
            boxed = find_last_boxed(text)
            if boxed is not None:
                match = self._boxed.fullmatch(boxed.strip())
                letter = match.group(1) if match else None
        if letter is None:
            match = self._head.match(text)
            letter = match.group(1) if match else None
        if letter is None:
            match = _last_match(self._paren, text)
            letter = match.group(1) if match else None
        if letter is None:
            raise ExtractionError(
                f"no option among {', '.join(self.choices)} chosen in the response "
                f"{preview(text)}; ask for a final line like 'Answer: C'"
            )
        return letter.upper()

    def _from_answer_phrase(self, text: str) -> str | None:
        found: str | None = None
        for keyword in self._answer_kw.finditer(text):
            match = self._answer_tail.match(text, keyword.end())
            if match:
                found = match.group(1) or match.group(2)
        return found
