"""evaluate()'s end step: the final manifest, and samples kept once per content."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_themis import evaluate
from pytest_themis.comparison.samples import LATEST_KEY, load_stored_run
from pytest_themis.experiment.manifest import (
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
