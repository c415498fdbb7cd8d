"""The one JSON form of a :class:`GenerationRecord` (cache entries, process messages)."""

from __future__ import annotations

from typing import Any

from .entities import GenerationError, GenerationRecord, GenerationTask, TokenUsage

__all__ = ["record_from_dict", "record_to_dict"]


def record_to_dict(record: GenerationRecord) -> dict[str, Any]:
    """JSON-able fields of ``record`` (its task is named by id, not stored).

    ``error`` appears only on error records, so a successful record's form never changes.
    """
    usage = record.usage
    out: dict[str, Any] = {
        "text": record.text,
        "usage": [usage.prompt_tokens, usage.completion_tokens] if usage else None,
        "cost": record.cost,
        "latency": round(record.latency, 6),
        "finish_reason": record.finish_reason,
        "attempts": record.attempts,
        "model": record.task.model.identifier,
        "task": record.task.task_id,
    }
    error = record.error
    if error is not None:
        out["error"] = [error.kind, error.type, error.message, error.status_code]
    return out


def record_from_dict(
    task: GenerationTask, value: dict[str, Any], *, cached: bool = False
) -> GenerationRecord | None:
    """The record :func:`record_to_dict` wrote for ``task``; None when ``value`` is not one."""
    text = value.get("text")
    error = value.get("error")
    if not isinstance(text, str) and error is None:
        return None
    usage = value.get("usage")
    return GenerationRecord(
        task=task,
        text=text if isinstance(text, str) else None,
        usage=TokenUsage(int(usage[0]), int(usage[1])) if usage else None,
        cost=value.get("cost"),
        latency=float(value.get("latency") or 0.0),
        finish_reason=value.get("finish_reason"),
        error=GenerationError(*error) if error is not None else None,
        attempts=int(value.get("attempts") or 0),
        cached=cached,
    )
