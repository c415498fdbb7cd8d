"""What the two HTTP clients of litellm-named models share (litellm and the native client).

The provider options merged under each task's, the redacted ``repr``, how a task is named in
error messages, and the wait a server asks for in ``Retry-After``. Nothing here imports a
client library.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

from ..core.entities import REDACTED, GenerationTask, is_secret_option
from .base import Provider

__all__ = ["RemoteProvider", "describe_task", "retry_after_seconds"]


class RemoteProvider(Provider):
    """A provider configured by keyword options that each task's model options override."""

    def __init__(self, **options: Any) -> None:
        self._options = dict(options)

    def __repr__(self) -> str:
        shown = {k: (REDACTED if is_secret_option(k) else v) for k, v in self._options.items()}
        return f"{type(self).__name__}({shown!r})"

    def merged_options(self, task_options: Mapping[str, Any]) -> dict[str, Any]:
        """This provider's options under ``task_options``; ``base_url`` is read as ``api_base``
        (``api_base`` wins when both are given)."""
        options = {**self._options, **task_options}
        if "base_url" in options and "api_base" not in options:
            options["api_base"] = options.pop("base_url")
        else:
            options.pop("base_url", None)
        return options


def describe_task(task: GenerationTask, options: Mapping[str, Any]) -> str:
    """``model 'openai/x' at http://host/v1 (task t1)``: the request named in error messages."""
    base = options.get("api_base")
    suffix = f" at {base}" if base else ""
    return f"model {task.model.identifier!r}{suffix} (task {task.task_id})"


def retry_after_seconds(headers: Mapping[str, Any]) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``Retry-After`` (a number
    of seconds or an HTTP date); None when neither is given or readable."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except (TypeError, ValueError):
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except (TypeError, ValueError):
        pass
    try:
        when = email.utils.parsedate_to_datetime(str(raw))
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
