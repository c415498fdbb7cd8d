"""Stable hashing of JSON-like values (cache keys, fingerprints, manifest hash)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["canonical_json", "dataset_fingerprint", "stable_hash"]


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, tuples as lists."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def stable_hash(value: Any, length: int = 64) -> str:
    """SHA-256 hex digest of :func:`canonical_json` (``length`` truncates)."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()[:length]


def dataset_fingerprint(rows: Iterable[Any]) -> str:
    """Content hash of dataset rows, in order (the manifest's dataset fingerprint)."""
    return stable_hash([dict(r) if isinstance(r, Mapping) else r for r in rows])
