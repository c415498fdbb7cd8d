"""Generation cache and run records on top of a :class:`StorageBackend`."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from typing import Any

from ..backends.storage import StorageBackend
from ..core.defaults import CACHE_MODES, DEFAULT_CACHE_DIR
from ..core.entities import (
    CellSpec,
    GenerationError,
    GenerationRecord,
    GenerationTask,
    ModelSpec,
    SamplingConfig,
    is_secret_option,
)
from ..core.hashing import canonical_json
from ..core.records import record_from_dict, record_to_dict
from ..errors import ConfigurationError
from .fingerprint import callable_fingerprint

__all__ = ["CACHE_MODES", "TRANSPORT_OPTIONS", "CacheManager", "generation_key", "output_options"]

_KEY_VERSION = 3

#: Provider options that never change what the model answers, so they stay out of the key:
#: transport (timeouts, retries, parallelism, the fake provider's latency), injected failures
#: (``fail_rate``/``error`` only produce errors, and errors are never cached), the callable itself
#: (replaced by its fingerprint) and the api base (already a key part of its own). Credentials —
#: any option whose name looks like one (key, token, secret, password, auth, header, …) — are
#: dropped by :func:`is_secret_option`.
TRANSPORT_OPTIONS = frozenset(
    {
        "timeout",
        "max_retries",
        "num_retries",
        "max_parallel",
        "latency",
        "fail_rate",
        "error",
        "fn",
        "version",
        "api_base",
        "base_url",
        "organization",
    }
)

_model_parts: dict[int, tuple[ModelSpec, str]] = {}
_MAX_MODEL_PARTS = 1024


def output_options(model: ModelSpec) -> dict[str, Any]:
    """The model's options that can change its output (see :data:`TRANSPORT_OPTIONS`)."""
    return {
        name: value
        for name, value in sorted(model.options.items())
        if name not in TRANSPORT_OPTIONS and not is_secret_option(name)
    }


def _model_part(model: ModelSpec) -> str:
    """Canonical JSON of the model's key parts, memoised per ``ModelSpec`` object.

    Keyed by identity (the entry holds the object, so its id cannot be reused): a ``ModelSpec``'s
    equality ignores its options, which are key parts here.
    """
    entry = _model_parts.get(id(model))
    if entry is not None and entry[0] is model:
        return entry[1]
    fn = model.options.get("fn")
    fingerprint = callable_fingerprint(fn, model.options) if fn is not None else None
    part = canonical_json(
        [model.provider, model.identifier, model.api_base, output_options(model), fingerprint]
    )
    if len(_model_parts) >= _MAX_MODEL_PARTS:
        _model_parts.clear()
    _model_parts[id(model)] = (model, part)
    return part


def _cell_part(cell: CellSpec) -> str:
    return _cell_part_of(_model_part(cell.model), cell.sampling)


@functools.lru_cache(maxsize=1024)
def _cell_part_of(model_part: str, sampling: SamplingConfig) -> str:
    return canonical_json([_KEY_VERSION, model_part, sampling.to_dict()])


def generation_key(task: GenerationTask) -> str:
    """Cache key: everything that changes the model's output, nothing that does not.

    The rule. In: the provider, model identifier and api base; every provider option not listed
    in :data:`TRANSPORT_OPTIONS` and not credential-like (``extra_body``, reasoning settings,
    ``api_version``, a fake model's ``wrong_rate`` … — an option we do not know is assumed to
    matter); for a Python callable its fingerprint (:mod:`.fingerprint`: declared version, or
    its code, closure values and module source); every sampling parameter; the rendered messages
    and the sample index. Out: the template's name, timeouts, retries, parallelism, credentials,
    the execution backend and the store. ``_KEY_VERSION`` changes whenever this rule does.
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
        return _stored(task, value)

    def lookup_many(self, tasks: Sequence[GenerationTask]) -> list[GenerationRecord | None]:
        """The stored record of each task (None for a miss), in one storage round trip."""
        if not self.reads:
            return [None] * len(tasks)
        keys = [self.key_for(task) for task in tasks]
        found = self.storage.get_many(keys)
        out: list[GenerationRecord | None] = []
        for task, key in zip(tasks, keys, strict=True):
            value = found.get(key)
            out.append(None if value is None else _stored(task, value))
        return out

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


def _stored(task: GenerationTask, value: dict[str, Any]) -> GenerationRecord | None:
    """The cached answer in ``value`` (only successful generations are stored), or None."""
    record = record_from_dict(task, value, cached=True)
    return record if record is not None and record.ok else None
