"""Extractors: pull the answer a metric should score out of a model response.

An extractor raises :class:`~pytest_themis.errors.ExtractionError` when the response holds no
answer; the pipeline then records an extraction failure (scored 0, counted separately).
All built-in extractors run in time linear in the response length, so hostile responses
(hundreds of kilobytes, thousands of unbalanced braces) cannot stall an evaluation.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from typing import Any, Literal

from ..errors import ConfigurationError, ExtractionError
from ._numbers import first_number, last_number
from ._params import public_params

__all__ = [
    "BoxedExtractor",
    "Extractor",
    "GSM8KExtractor",
    "IdentityExtractor",
    "JsonFieldExtractor",
    "MathVerifyExtractor",
    "MultipleChoiceExtractor",
    "RegexExtractor",
    "find_last_boxed",
    "strip_reasoning",
]

_PREVIEW = 60


def _preview(text: str) -> str:
    """Short single-line excerpt of a response for error messages."""
    flat = " ".join(text[:200].split())
    return repr(flat[:_PREVIEW] + ("…" if len(flat) > _PREVIEW or len(text) > 200 else ""))


class Extractor(ABC):
    """Turns a response text into the prediction string handed to metrics."""

    name: str = "Extractor"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    @abstractmethod
    def extract(self, text: str) -> str:
        """Return the answer in ``text``; raise :class:`ExtractionError` when there is none."""

    def params(self) -> dict[str, Any]:
        """Settings that change the output (part of the pipeline fingerprint).

        By default: the public instance attributes holding plain JSON values.
        """
        return public_params(self)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.params()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


# --------------------------------------------------------------------------- reasoning traces

_THINK_TAG = re.compile(r"<(/?)(think|thinking)\s*>", re.IGNORECASE)


def strip_reasoning(text: str) -> str:
    """Remove ``<think>…</think>`` / ``<thinking>…</thinking>`` blocks from ``text``.

    A closing tag with no opening tag (templates that put ``<think>`` in the prompt) drops
    everything before it. An opening tag that is never closed means the answer was cut off
    inside the reasoning: :class:`ExtractionError` is raised.
    """
    if "<" not in text:
        return text.strip()
    kept: list[str] = []
    pos = 0
    depth = 0
    open_at = -1
    for match in _THINK_TAG.finditer(text):
        closing = bool(match.group(1))
        if not closing:
            if depth == 0:
                kept.append(text[pos : match.start()])
                open_at = match.start()
            depth += 1
        elif depth > 0:
            depth -= 1
            if depth == 0:
                pos = match.end()
        else:  # orphan closing tag: the reasoning started in the prompt
            kept = []
            pos = match.end()
    if depth > 0:
        raise ExtractionError(
            f"unclosed <think> block at offset {open_at} (response {_preview(text)}): the "
            "response ended inside its reasoning, usually because max_tokens was reached; "
            "raise max_tokens or ask for a shorter reasoning trace"
        )
    kept.append(text[pos:])
    return "".join(kept).strip()


# --------------------------------------------------------------------------- simple extractors


class IdentityExtractor(Extractor):
    """The whole response, stripped of surrounding whitespace."""

    def extract(self, text: str) -> str:
        answer = text.strip()
        if not answer:
            raise ExtractionError("the response is empty; nothing to score")
        return answer


class RegexExtractor(Extractor):
    """The ``group`` of the first (or, with ``which="last"``, the last) match of ``pattern``.

    A pattern without groups yields the whole match. Matches whose group is empty are skipped.
    The pattern is the caller's: avoid nested quantifiers such as ``(a+)+`` that backtrack
    exponentially on long responses.
    """

    def __init__(
        self,
        pattern: str,
        group: int | str = 1,
        flags: int = 0,
        which: Literal["first", "last"] = "first",
    ) -> None:
        if not isinstance(pattern, str) or not pattern:
            raise ConfigurationError(
                f"RegexExtractor pattern must be a non-empty string, got {pattern!r}"
            )
        try:
            regex = re.compile(pattern, flags)
        except re.error as exc:
            raise ConfigurationError(
                f"RegexExtractor pattern {pattern!r} does not compile: {exc}; fix the regular "
                "expression (remember raw strings, e.g. r'Answer:\\s*(\\d+)')"
            ) from exc
        if which not in ("first", "last"):
            raise ConfigurationError(
                f"RegexExtractor which={which!r} is invalid; use 'first' or 'last'"
            )
        if isinstance(group, bool) or not isinstance(group, (int, str)):
            raise ConfigurationError(
                f"RegexExtractor group must be an int or a name, got {group!r}"
            )
        if isinstance(group, str):
            if group not in regex.groupindex:
                names = ", ".join(regex.groupindex) or "none"
                raise ConfigurationError(
                    f"RegexExtractor pattern {pattern!r} has no group named {group!r} "
                    f"(named groups: {names})"
                )
            resolved: int | str = group
        elif regex.groups == 0 and group in (0, 1):
            resolved = 0
        elif 0 <= group <= regex.groups:
            resolved = group
        else:
            raise ConfigurationError(
                f"RegexExtractor pattern {pattern!r} has {regex.groups} group(s); "
                f"group={group} does not exist"
            )
        self.pattern = pattern
        self.group = group
        self.flags = int(flags)
        self.which = which
        self._regex = regex
        self._group = resolved

    def params(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "group": self.group,
            "flags": self.flags,
            "which": self.which,
        }

    def extract(self, text: str) -> str:
        found: str | None = None
        for match in self._regex.finditer(text):
            value = match.group(self._group)
            if value is None or not value.strip():
                continue
            found = value.strip()
            if self.which == "first":
                break
        if found is None:
            raise ExtractionError(
                f"pattern {self.pattern!r} did not match the response {_preview(text)}"
            )
        return found


class JsonFieldExtractor(Extractor):
    """The value at ``path`` (``"a.b.0.c"``: keys and list indices) of a JSON response.

    The JSON may be wrapped in a fenced code block or surrounded by prose. Non-string values are
    returned as compact JSON (``18`` → ``"18"``, ``true`` → ``"true"``).
    """

    _MAX_CANDIDATES = 20

    def __init__(self, path: str) -> None:
        if not isinstance(path, str) or not path.strip():
            raise ConfigurationError(
                f"JsonFieldExtractor path must be a non-empty string like 'answer' or "
                f"'result.items.0.value', got {path!r}"
            )
        self.path = path.strip()
        self._parts = self.path.split(".")

    def params(self) -> dict[str, Any]:
        return {"path": self.path}

    def extract(self, text: str) -> str:
        document = self._load(text)
        value: Any = document
        walked: list[str] = []
        for part in self._parts:
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif (
                isinstance(value, list)
                and _is_index(part)
                and -len(value) <= int(part) < len(value)
            ):
                value = value[int(part)]
            else:
                where = ".".join(walked) or "the top level"
                raise ExtractionError(
                    f"JSON path {self.path!r}: no {part!r} under {where} "
                    f"(found {_describe_json(value)}) in the response {_preview(text)}"
                )
            walked.append(part)
        if isinstance(value, str):
            return value.strip()
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def _load(self, text: str) -> Any:
        decoder = json.JSONDecoder()
        candidates = [text.strip()]
        fenced = _fenced_block(text)
        if fenced is not None:
            candidates.insert(0, fenced)
        for candidate in candidates:
            try:
                return json.loads(candidate)
            except ValueError:
                pass
        # JSON embedded in prose: decode from the first few '{' / '[' positions.
        tried = 0
        for match in re.finditer(r"[{\[]", text):
            if tried >= self._MAX_CANDIDATES:
                break
            tried += 1
            try:
                return decoder.raw_decode(text, match.start())[0]
            except ValueError:
                continue
        raise ExtractionError(
            f"no JSON document found for path {self.path!r} in the response {_preview(text)}; "
            "ask the model for a JSON object"
        )


def _is_index(part: str) -> bool:
    return part.lstrip("-").isdigit() and len(part) < 10


def _describe_json(value: Any) -> str:
    if isinstance(value, dict):
        keys = list(value)[:8]
        return "keys " + (", ".join(map(repr, keys)) if keys else "none")
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return f"a {type(value).__name__}"


def _fenced_block(text: str) -> str | None:
    """Contents of the first ``` fenced block (language tag dropped), without regex scanning."""
    start = text.find("```")
    if start < 0:
        return None
    body_start = text.find("\n", start + 3)
    if body_start < 0:
        return None
    end = text.find("```", body_start)
    if end < 0:
        return None
    return text[body_start + 1 : end].strip()


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
                f"no complete \\boxed{{...}} answer in the response {_preview(text)}; ask the "
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
                f"no numeric answer in the response {_preview(text)}; the prompt should ask "
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
                f"no \\boxed{{}}, $...$ or number in the response {_preview(text)}; ask the "
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
                f"{_preview(text)}; ask for a final line like 'Answer: C'"
            )
        return letter.upper()

    def _from_answer_phrase(self, text: str) -> str | None:
        found: str | None = None
        for keyword in self._answer_kw.finditer(text):
            match = self._answer_tail.match(text, keyword.end())
            if match:
                found = match.group(1) or match.group(2)
        return found
