"""The storage contract: a durable key → JSON-value store shared by concurrent processes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

__all__ = ["StorageBackend"]


class StorageBackend(ABC):
    """Where generations and run records live. Subclass for S3, Postgres, Redis …

    Values are JSON-serialisable dicts. ``set`` must be durable when it returns (a killed process
    keeps everything written before), and safe when several processes write the same key.
    ``get`` returns ``None`` for a missing *or unreadable* entry; implementations should warn about
    the latter so a torn write is regenerated, not trusted.
    """

    @abstractmethod
    def get(self, key: str) -> dict[str, Any] | None:
        """The value stored under ``key``, or None."""

    @abstractmethod
    def set(self, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` durably under ``key`` (last writer wins)."""

    def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The intact entries among ``keys`` (missing or unreadable ones are left out).

        Remote stores override this to answer a whole batch in one round trip; the orchestrator
        looks up cache hits in batches through it.
        """
        found: dict[str, dict[str, Any]] = {}
        for key in keys:
            value = self.get(key)
            if value is not None:
                found[key] = value
        return found

    def set_many(self, items: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Store several values; backends may do it in one transaction."""
        for key, value in items:
            self.set(key, value)

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every stored key starting with ``prefix`` (used to list runs: prefix ``"run:"``)."""
        raise NotImplementedError(f"{type(self).__name__} cannot list its keys")

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""

    def close(self) -> None:
        """Release handles."""

    def describe(self) -> dict[str, Any]:
        return {"name": type(self).__name__}
