"""What the test server sends back for each drawn outcome: errors, garbage or a completion."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from .faults import FaultPlan, Responder, content_text
from .wire import error_body

__all__ = ["Exchange", "respond"]


@dataclass(frozen=True)
class Exchange:
    """One chat request as the server parsed it (``text_completion``: sent to /completions)."""

    model: str
    messages: list[dict[str, Any]]
    request: dict[str, Any]
    headers: dict[str, str]
    text_completion: bool = False


async def respond(
    outcome: str,
    plan: FaultPlan,
    exchange: Exchange,
    responder: Responder,
    response_id: str,
    created: int,
) -> tuple[int, bytes, dict[str, str]]:
    """``(status, body, extra headers)`` for a request whose drawn outcome is ``outcome``.

    Status 0 means: reset the connection without answering.
    """
    model, messages, request, headers = (
        exchange.model,
        exchange.messages,
        exchange.request,
        exchange.headers,
    )
    if outcome == "reset":
        return 0, b"", {}
    if outcome in ("rate_limit", "busy"):
        wait = plan.retry_after
        extra = {"Retry-After": f"{wait:g}", "retry-after-ms": str(int(wait * 1000))}
        message = "too many requests in flight" if outcome == "busy" else "rate limit reached"
        return 429, error_body(message, 429), extra
    if outcome == "error_500":
        return 500, error_body("the server had an error processing your request", 500), {}
    if outcome == "error_503":
        return 503, error_body("the engine is currently overloaded", 503), {}
    if outcome.startswith("status_"):
        status = int(outcome[len("status_") :])
        message = f"request for model {model!r} refused"
        if status in (401, 403):
            # Echo the credentials like a careless provider would, to test redaction.
            custom = ", ".join(
                f"{k}={v}"
                for k, v in headers.items()
                if k.startswith("x-") and not k.startswith("x-stainless")
            )
            message = f"Incorrect API key provided: {headers.get('authorization', '')!r}"
            if custom:
                message += f" (headers: {custom})"
        return status, error_body(message, status), {}
    if outcome == "malformed":
        return 200, b"<html>upstream proxy error: this is not JSON", {}
    if outcome == "timeout":
        await asyncio.sleep(plan.timeout_delay)
    text = responder(messages, request)
    finish_reason = "stop"
    max_tokens = request.get("max_tokens") or request.get("max_completion_tokens")
    words = text.split()
    if isinstance(max_tokens, int) and 0 < max_tokens < len(words):
        text = " ".join(words[:max_tokens])
        finish_reason = "length"
    if outcome == "length":
        finish_reason = "length"
    prompt_tokens = sum(len(content_text(m.get("content")).split()) for m in messages)
    completion_tokens = len(text.split())
    choices: list[dict[str, Any]] = []
    if outcome != "empty_choices":
        answer: dict[str, Any] = (
            {"text": text}
            if exchange.text_completion
            else {"message": {"role": "assistant", "content": text}}
        )
        choices.append({"index": 0, **answer, "logprobs": None, "finish_reason": finish_reason})
    payload = {
        "id": response_id,
        "object": "text_completion" if exchange.text_completion else "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return 200, json.dumps(payload).encode(), {}
