"""Default description of a component's settings, for fingerprints of user-defined classes."""

from __future__ import annotations

from typing import Any

__all__ = ["public_params"]

_SIMPLE = (str, int, float, bool, type(None))


def public_params(obj: Any) -> dict[str, Any]:
    """Public instance attributes holding plain JSON values (lists/tuples/dicts of them too)."""
    return {
        key: value
        for key, value in sorted(getattr(obj, "__dict__", {}).items())
        if not key.startswith("_") and key != "name" and _is_plain(value)
    }


def _is_plain(value: Any, depth: int = 0) -> bool:
    if isinstance(value, _SIMPLE):
        return True
    if depth > 3:
        return False
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v, depth + 1) for k, v in value.items())
    return False
