"""Extractors for plain text: the whole response, a regex group, a JSON field."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from ...errors import ConfigurationError, ExtractionError
from .base import Extractor, preview

__all__ = ["IdentityExtractor", "JsonFieldExtractor", "RegexExtractor"]


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
                f"pattern {self.pattern!r} did not match the response {preview(text)}"
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
                    f"(found {_describe_json(value)}) in the response {preview(text)}"
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
            f"no JSON document found for path {self.path!r} in the response {preview(text)}; "
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
