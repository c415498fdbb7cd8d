"""Generation cache and run records on top of a :class:`StorageBackend`."""

from __future__ import annotations

import functools
import hashlib
import os
from typing import Any

from ..backends.storage import StorageBackend
from ..core.defaults import CACHE_MODES, DEFAULT_CACHE_DIR
from ..core.entities import (
    CellSpec,
    GenerationError,
    GenerationRecord,
    GenerationTask,
    SamplingConfig,
    TokenUsage,
)
from ..core.hashing import canonical_json
from ..errors import ConfigurationError

__all__ = ["CACHE_MODES", "CacheManager", "generation_key"]

_KEY_VERSION = 2


def _cell_part(cell: CellSpec) -> str:
    model = cell.model
    return _cell_part_of(model.provider, model.identifier, model.api_base, cell.sampling)


@functools.lru_cache(maxsize=1024)
def _cell_part_of(
    provider: str, identifier: str, api_base: str | None, sampling: SamplingConfig
) -> str:
    """Memoised on exactly the key's inputs (a ``ModelSpec``'s equality ignores its options)."""
    return canonical_json([_KEY_VERSION, provider, identifier, api_base, sampling.to_dict()])


def generation_key(task: GenerationTask) -> str:
    """Cache key: everything that changes the model's output, nothing that does not.

    In: provider, model identifier, api base, sampling parameters (one canonical JSON part per
    cell, computed once), the rendered messages and the sample index. Out: the template's name,
    timeouts, retries, parallelism, credentials.
    """
    digest = hashlib.sha256(_cell_part(task.cell).encode())
    for message in task.messages:
        # Length-prefixed fields: unambiguous whatever the text holds, and no JSON escaping.
        for field in (message.get("role") or "", message.get("content") or ""):
            data = str(field).encode()
            digest.update(b"|%d:" % len(data))
            digest.update(data)
    digest.update(b"|#%d" % task.sample_index)
    return "gen:" + digest.hexdigest()


class CacheManager:
    """Reads and writes generations for the orchestrator.

    ``mode``: ``use`` (read and write, the default), ``refresh`` (ignore stored answers, overwrite
    them), ``off`` (neither), ``replay`` (read only; a miss becomes an error record, no request).
    ``enable_resume=False`` ignores stored generations (like ``refresh``); ``enable_cache=False``
    is ``off``.
    """

    def __init__(
        self,
        storage: StorageBackend | str | os.PathLike[str] | None = None,
        enable_resume: bool = True,
        enable_cache: bool = True,
        mode: str = "use",
    ) -> None:
        if mode not in CACHE_MODES:
            raise ConfigurationError(
                f"unknown cache mode {mode!r}; use one of {', '.join(CACHE_MODES)}"
            )
        if storage is None or isinstance(storage, (str, os.PathLike)):
            from ..storage.urls import open_storage

            # a folder or a store URL; a remote store connects on first use
            storage = open_storage(storage or DEFAULT_CACHE_DIR, connect=False)
        self.storage = storage
        self.mode = mode if enable_cache else "off"
        self.enable_resume = enable_resume
        self.enable_cache = enable_cache

    @property
    def reads(self) -> bool:
        return self.mode == "replay" or (self.mode == "use" and self.enable_resume)

    @property
    def writes(self) -> bool:
        return self.mode in ("use", "refresh")

    @property
    def replay(self) -> bool:
        return self.mode == "replay"

    def key_for(self, task: GenerationTask) -> str:
        if not task.cache_key:
            task.cache_key = generation_key(task)
        return task.cache_key

    def lookup(self, task: GenerationTask) -> GenerationRecord | None:
        """The stored record for ``task`` (marked ``cached``), or None."""
        if not self.reads:
            return None
        value = self.storage.get(self.key_for(task))
        if value is None:
            return None
        return record_from_dict(task, value)

    def miss_record(self, task: GenerationTask) -> GenerationRecord:
        """The error record for a replay-mode miss."""
        return GenerationRecord(
            task=task,
            error=GenerationError(
                kind="cache",
                type="CacheMissError",
                message=(
                    f"--themis-cache=replay: no cached generation for {task.task_id} "
                    f"(model {task.model.identifier}); run once with cache mode 'use' to record it"
                ),
            ),
        )

    def store_many(self, records: list[GenerationRecord]) -> None:
        """Persist the successful, freshly generated records in one transaction.

        Errors are never cached as answers.
        """
        if self.writes:
            items = [
                (self.key_for(r.task), record_to_dict(r)) for r in records if r.ok and not r.cached
            ]
            self.storage.set_many(items)

    def save_run(self, run_id: str, payload: dict[str, Any]) -> None:
        if self.mode != "off":
            self.storage.set("run:" + run_id, payload)

    def load_run(self, run_id: str) -> dict[str, Any] | None:
        return self.storage.get("run:" + run_id)

    def describe(self) -> dict[str, Any]:
        return {"mode": self.mode, "resume": self.enable_resume, **self.storage.describe()}


def record_to_dict(record: GenerationRecord) -> dict[str, Any]:
    usage = record.usage
    return {
        "text": record.text,
        "usage": [usage.prompt_tokens, usage.completion_tokens] if usage else None,
        "cost": record.cost,
        "latency": round(record.latency, 6),
        "finish_reason": record.finish_reason,
        "attempts": record.attempts,
        "model": record.task.model.identifier,
        "task": record.task.task_id,
    }


def record_from_dict(task: GenerationTask, value: dict[str, Any]) -> GenerationRecord | None:
    text = value.get("text")
    if not isinstance(text, str):
        return None
    usage = value.get("usage")
    return GenerationRecord(
        task=task,
        text=text,
        usage=TokenUsage(int(usage[0]), int(usage[1])) if usage else None,
        cost=value.get("cost"),
        latency=float(value.get("latency") or 0.0),
        finish_reason=value.get("finish_reason"),
        attempts=int(value.get("attempts") or 0),
        cached=True,
    )
