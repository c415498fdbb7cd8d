"""The session-end manifest check agrees with ``jsonschema`` on real and broken manifests."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from pytest_themis import evaluate
from pytest_themis.errors import ThemisError
from pytest_themis.experiment.manifest import check_manifest, manifest_schema
from pytest_themis.experiment.schema_check import KNOWN_KEYWORDS, first_violation

ROWS = [{"id": f"r{i}", "q": f"{i} + {i}", "answer": str(2 * i)} for i in range(12)]


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """A run's manifest, one with a comparison against it, and one over a local file."""
    store = str(tmp_path_factory.mktemp("store"))
    data = tmp_path_factory.mktemp("data") / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    common: dict[str, Any] = {
        "model": "fake:m", "prompt": "{q}", "reference_field": "answer",
        "metrics": ["exact_match"], "storage": store,
    }  # fmt: skip
    first = evaluate(dataset=ROWS, **common)
    second = evaluate(dataset=ROWS, baseline=first.run_id, **common)
    from_file = evaluate(dataset=str(data), **common)
    assert "comparison" in second.manifest
    return [first.manifest, second.manifest, from_file.manifest]


def _paths(value: Any, where: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield where
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*where, key))
    elif isinstance(value, list):
        for i, item in enumerate(value[:2]):
            yield from _paths(item, (*where, i))


def _mutants(manifest: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The manifest with one place deleted or replaced by a value of another kind."""
    for where in _paths(manifest):
        if not where:
            continue
        for replacement in ("x", -1, 1.5, None, True, [], {}, "", "0" * 64, _DELETE):
            mutant = copy.deepcopy(manifest)
            parent = mutant
            for step in where[:-1]:
                parent = parent[step]
            if replacement is _DELETE:
                del parent[where[-1]]
            else:
                parent[where[-1]] = replacement
            yield mutant


_DELETE = object()


def test_the_check_and_jsonschema_agree_on_every_mutant(manifests: list[dict[str, Any]]) -> None:
    schema = manifest_schema()
    reference = jsonschema.Draft202012Validator(schema)
    checked = rejected = 0
    for manifest in manifests:
        assert first_violation(manifest, schema) is None
        assert reference.is_valid(manifest)
        for mutant in _mutants(manifest):
            ours = first_violation(mutant, schema) is None
            theirs = reference.is_valid(mutant)
            assert ours == theirs, (ours, theirs, reference.iter_errors(mutant))
            checked += 1
            rejected += not ours
    assert checked > 1000 and rejected > checked // 4  # the mutants exercise the schema


def test_a_violation_names_the_place(manifests: list[dict[str, Any]]) -> None:
    broken = copy.deepcopy(manifests[1])
    broken["samples"]["count"] = -1
    with pytest.raises(ThemisError, match="manifest is invalid at samples/count: -1 is less"):
        check_manifest(broken)
    del broken["cells"][0]["cell_id"]
    with pytest.raises(ThemisError, match="cells/0: 'cell_id' is a required property"):
        check_manifest(broken)


def _keywords(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            if key in ("properties", "$defs"):
                for sub in value.values():
                    yield from _keywords(sub)
            else:
                yield from _keywords(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keywords(item)


def test_the_check_knows_every_keyword_of_the_schema() -> None:
    used = set(_keywords(manifest_schema()))
    assert used <= KNOWN_KEYWORDS, used - KNOWN_KEYWORDS
    with pytest.raises(ValueError, match="uniqueItems"):
        first_violation([1], {"type": "array", "uniqueItems": True})


def test_closed_objects_and_bounds_outside_the_manifest_schema() -> None:
    closed = {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "additionalProperties": False,
    }
    assert first_violation({"a": 1}, closed) is None
    assert first_violation({"a": 1, "b": 2}, closed) == (
        (),
        "additional property 'b' is not allowed",
    )
    assert first_violation(5, {"exclusiveMaximum": 5}) is not None
    assert first_violation(4.5, {"exclusiveMaximum": 5}) is None
