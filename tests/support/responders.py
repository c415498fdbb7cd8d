"""Responders for the test server that record what the client sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Responder = Callable[[list[dict[str, Any]], dict[str, Any]], str]


def recording_responder(answer: str = "ok") -> tuple[list[dict[str, Any]], Responder]:
    """(the request bodies seen, in order; a responder that appends to it and says ``answer``)."""
    seen: list[dict[str, Any]] = []

    def responder(messages: list[dict[str, Any]], request: dict[str, Any]) -> str:
        seen.append(request)
        return answer

    return seen, responder
