"""Level 3 — same ``evaluate()`` call, your infrastructure underneath.

``execution_backend`` decides where blocking provider calls run; ``storage`` (a folder or a
``StorageBackend``) where generations and run records are kept. Both below are small but real:
a thread pool that records what it ran, and a store that keeps one JSON file per entry (the
shape an object-store backend such as S3 would have).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pytest_themis import evaluate
from pytest_themis.backends import ExecutionBackend, LocalExecutionBackend, StorageBackend

T = TypeVar("T")
R = TypeVar("R")


class CountingThreadBackend(ExecutionBackend):
    """Delegates to a local thread pool and counts the calls it executed."""

    def __init__(self, workers: int) -> None:
        self.inner = LocalExecutionBackend(max_workers=workers)
        self.calls = 0

    def map_unordered(
        self, fn: Callable[[T], R], items: Iterable[T], *, max_in_flight: int
    ) -> Iterator[R]:
        for result in self.inner.map_unordered(fn, items, max_in_flight=max_in_flight):
            self.calls += 1
            yield result


class JsonFileStorage(StorageBackend):
    """One JSON object per key in a folder, written atomically (write + rename)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / (key.replace(":", "_") + ".json")

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._path(key).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def set(self, key: str, value: dict[str, Any]) -> None:
        tmp = self._path(key).with_suffix(".tmp")
        tmp.write_text(json.dumps(value))
        tmp.replace(self._path(key))


store_dir = Path(tempfile.mkdtemp(prefix="themis-level3-"))
backend = CountingThreadBackend(workers=8)
for attempt in ("first run", "rerun"):
    report = evaluate(
        "demo",
        model="fake:fake-math-llm",
        execution_backend=backend,
        storage=JsonFileStorage(store_dir),
    )
    print(
        f"{attempt}: accuracy {report.metric('NumericMatch').mean:.3f}, "
        f"provider calls so far {backend.calls}, stored entries {len(list(store_dir.iterdir()))}"
    )
