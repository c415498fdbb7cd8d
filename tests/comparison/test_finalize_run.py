"""evaluate()'s end step: the final manifest, and samples kept once per content."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from pytest_themis import evaluate
from pytest_themis.comparison.samples import LATEST_KEY, load_stored_run
from pytest_themis.errors import ThemisError
from pytest_themis.experiment.manifest import (
    VALIDATE_ENV,
    check_manifest,
    manifest_hash,
    validate_manifest,
)
from pytest_themis.storage import ExperimentStorage

ROWS = [{"id": f"r{i}", "q": f"{i} + {i}", "answer": str(2 * i)} for i in range(40)]


class _CountingStorage(ExperimentStorage):
    """Counts the ``samples:`` entries written."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.sample_writes = 0

    def set_many(self, items: Any) -> None:
        items = list(items)
        self.sample_writes += sum(1 for key, _ in items if key.startswith("samples:"))
        super().set_many(items)


def _run(storage: Any, **kw: Any) -> Any:
    return evaluate(
        dataset=ROWS, model="fake:m", prompt="{q}", reference_field="answer",
        metrics=["exact_match"], storage=storage, **kw,
    )  # fmt: skip


def test_evaluate_manifest_is_final_hashed_and_saved_once(tmp_path: Path) -> None:
    storage = ExperimentStorage(tmp_path / "store")
    report = _run(storage)
    manifest = report.manifest
    assert manifest["samples"]["store_key"] == f"samples:{report.run_id}"
    assert manifest["samples"]["count"] == 40
    assert manifest["manifest_sha256"] == manifest_hash(manifest)
    validate_manifest(manifest)
    # the run record and the stored samples' index hold that same final manifest
    assert storage.get(f"run:{report.run_id}") == manifest
    stored = load_stored_run(storage, report.run_id)
    assert stored is not None and stored[0] == manifest and len(stored[1]) == 40


def test_cached_rerun_keeps_the_stored_samples_of_equal_content(tmp_path: Path) -> None:
    storage = _CountingStorage(tmp_path / "store")
    first = _run(storage)
    written = storage.sample_writes
    assert written >= 2  # rows, then the index and the latest pointer
    storage.set(LATEST_KEY, {"run_id": "someone-else"})
    rerun = _run(storage)
    assert rerun.run_id == first.run_id and rerun.evaluation_report.cached == 40
    assert storage.sample_writes == written  # nothing rewritten ...
    assert storage.get(LATEST_KEY) == {"run_id": rerun.run_id}  # ... but it is the latest run
    stored = load_stored_run(storage, rerun.run_id)
    assert stored is not None
    # the rows describe the run that produced them (not cached), with the same content digest
    assert not any(row["cached"] for row in stored[1])
    assert stored[0]["samples"]["content_sha256"] == rerun.manifest["samples"]["content_sha256"]
    # a stored digest that does not match (other content under this run id) is replaced
    index = storage.get(f"samples:{rerun.run_id}")
    storage.set(f"samples:{rerun.run_id}", dict(index, digest="0" * 64))
    _run(storage)
    assert storage.sample_writes > written
    stored = load_stored_run(storage, rerun.run_id)
    assert stored is not None and all(row["cached"] for row in stored[1])


def test_structural_check_catches_shape_errors_and_full_validation_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(VALIDATE_ENV, raising=False)
    manifest = _run(ExperimentStorage(tmp_path / "store")).manifest
    check_manifest(manifest)
    missing = copy.deepcopy(manifest)
    del missing["cells"][0]["cell_id"]
    with pytest.raises(ThemisError, match="cells/0: 'cell_id' is a required property"):
        check_manifest(missing)
    wrong_type = copy.deepcopy(manifest)
    wrong_type["totals"]["counts"]["total"] = "40"
    with pytest.raises(ThemisError, match="totals/counts/total"):
        check_manifest(wrong_type)
    out_of_bounds = copy.deepcopy(manifest)
    out_of_bounds["samples"]["count"] = -1  # a bound: only the JSON Schema checks it
    check_manifest(out_of_bounds)
    with pytest.raises(ThemisError, match="samples/count"):
        validate_manifest(out_of_bounds)
    monkeypatch.setenv(VALIDATE_ENV, "1")
    with pytest.raises(ThemisError, match="samples/count"):
        check_manifest(out_of_bounds)
