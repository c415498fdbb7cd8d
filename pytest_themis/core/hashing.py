"""Stable hashing of JSON-like values (cache keys, fingerprints, manifest hash)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["canonical_json", "stable_hash"]


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, tuples as lists."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def stable_hash(value: Any, length: int = 64) -> str:
    """SHA-256 hex digest of :func:`canonical_json` (``length`` truncates)."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()[:length]
