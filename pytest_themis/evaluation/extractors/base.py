"""The extractor interface, reasoning-trace stripping and the error-message preview."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any

from ...errors import ExtractionError
from .._params import public_params

__all__ = ["PREVIEW_CHARS", "Extractor", "preview", "strip_reasoning"]

PREVIEW_CHARS = 60


def preview(text: str) -> str:
    """Short single-line excerpt of a response for error messages."""
    flat = " ".join(text[:200].split())
    cut = len(flat) > PREVIEW_CHARS or len(text) > 200
    return repr(flat[:PREVIEW_CHARS] + ("…" if cut else ""))


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
            f"unclosed <think> block at offset {open_at} (response {preview(text)}): the "
            "response ended inside its reasoning, usually because max_tokens was reached; "
            "raise max_tokens or ask for a shorter reasoning trace"
        )
    kept.append(text[pos:])
    return "".join(kept).strip()
