"""A small JSON Schema checker for the keywords the shipped manifest schema uses.

The session-end manifest check runs on every pytest session, where importing ``jsonschema``
(not a runtime dependency) would cost 0.1-0.3 s. This walker covers exactly the keywords in
``schema/manifest.schema.json``; a schema keyword it does not know raises :class:`ValueError`
instead of being skipped, and the tests check it agrees with ``jsonschema`` on valid and broken
manifests.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

__all__ = ["KNOWN_KEYWORDS", "first_violation"]

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list, tuple),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}
#: Keywords that never constrain a value.
_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "title", "description", "default", "examples"})
#: Every keyword :func:`first_violation` understands.
KNOWN_KEYWORDS = _ANNOTATIONS | {
    "$ref", "type", "enum", "const", "required", "properties", "additionalProperties", "items",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "pattern", "minLength",
    "anyOf", "not", "if", "then",
}  # fmt: skip

Where = tuple[str, ...]
Violation = tuple[Where, str]


def first_violation(value: Any, schema: dict[str, Any]) -> Violation | None:
    """The first place ``value`` breaks ``schema`` (path, message), or None when it conforms."""
    return _check(value, schema, schema, ())


@lru_cache(maxsize=64)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _type_ok(value: Any, names: str | list[str]) -> bool:
    for name in [names] if isinstance(names, str) else names:
        if isinstance(value, bool) and name in ("integer", "number"):
            continue
        if isinstance(value, _TYPES[name]):
            return True
    return False


def _check(
    value: Any, node: dict[str, Any], root: dict[str, Any], where: Where
) -> Violation | None:
    unknown = node.keys() - KNOWN_KEYWORDS
    if unknown:
        raise ValueError(f"schema keyword(s) {sorted(unknown)} at {'/'.join(where) or '(root)'}")
    ref = node.get("$ref")
    if ref is not None:
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"unsupported $ref {ref!r}")
        found = _check(value, root["$defs"][ref.rsplit("/", 1)[1]], root, where)
        if found is not None:
            return found
    if "type" in node and not _type_ok(value, node["type"]):
        return where, f"{value!r:.60} is not of type {node['type']!r}"
    if "enum" in node and value not in node["enum"]:
        return where, f"{value!r:.60} is not one of {node['enum']!r}"
    if "const" in node and value != node["const"]:
        return where, f"{value!r:.60} was expected to be {node['const']!r}"
    return (
        _scalar(value, node, where)
        or _combined(value, node, root, where)
        or _container(value, node, root, where)
    )


def _scalar(value: Any, node: dict[str, Any], where: Where) -> Violation | None:
    if isinstance(value, str):
        if len(value) < node.get("minLength", 0):
            return where, f"{value!r:.60} is shorter than {node['minLength']}"
        pattern = node.get("pattern")
        if pattern is not None and not _regex(pattern).search(value):
            return where, f"{value!r:.60} does not match {pattern!r}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        bounds = (
            ("minimum", lambda b: value >= b, "less than the minimum of"),
            ("maximum", lambda b: value <= b, "greater than the maximum of"),
            ("exclusiveMinimum", lambda b: value > b, "less than or equal to the minimum of"),
            ("exclusiveMaximum", lambda b: value < b, "greater than or equal to the maximum of"),
        )
        for keyword, holds, words in bounds:
            if keyword in node and not holds(node[keyword]):
                return where, f"{value!r} is {words} {node[keyword]!r}"
    return None


def _combined(
    value: Any, node: dict[str, Any], root: dict[str, Any], where: Where
) -> Violation | None:
    options = node.get("anyOf")
    if options is not None and all(_check(value, o, root, where) for o in options):
        return where, f"{value!r:.60} matches none of the allowed forms"
    if "not" in node and _check(value, node["not"], root, where) is None:
        return where, f"{value!r:.60} matches a form that is not allowed"
    if "if" in node and "then" in node and _check(value, node["if"], root, where) is None:
        return _check(value, node["then"], root, where)
    return None


def _container(
    value: Any, node: dict[str, Any], root: dict[str, Any], where: Where
) -> Violation | None:
    if isinstance(value, dict):
        missing = [k for k in node.get("required", ()) if k not in value]
        if missing:
            return where, f"{missing[0]!r} is a required property"
        props = node.get("properties", {})
        extra = node.get("additionalProperties", True)
        for key, item in value.items():
            sub = props.get(key, extra)
            if sub is False:
                return where, f"additional property {key!r} is not allowed"
            found = _check(item, sub, root, (*where, str(key))) if isinstance(sub, dict) else None
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)) and isinstance(node.get("items"), dict):
        for i, item in enumerate(value):
            found = _check(item, node["items"], root, (*where, str(i)))
            if found is not None:
                return found
    return None
