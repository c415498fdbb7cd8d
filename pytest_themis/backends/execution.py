"""Execution backends: run a function over a stream of items with bounded concurrency."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

__all__ = ["ExecutionBackend", "LocalExecutionBackend", "SequentialExecutionBackend"]

T = TypeVar("T")
R = TypeVar("R")


class ExecutionBackend(ABC):
    """Where generation work runs. Subclass to move it to Ray, Dask, a job queue …

    :meth:`map_unordered` must pull ``items`` lazily, keep at most ``max_in_flight`` calls running,
    and yield results as they complete (in any order). ``fn`` never raises for provider failures:
    the runner turns those into error records before they reach the backend.
    """

    @abstractmethod
    def map_unordered(
        self, fn: Callable[[T], R], items: Iterable[T], *, max_in_flight: int
    ) -> Iterator[R]:
        """Yield ``fn(item)`` for every item, as each completes."""

    def shutdown(self) -> None:
        """Release workers. Called when the runner that owns the backend is done with it."""

    def describe(self) -> dict[str, object]:
        return {"name": type(self).__name__}


class SequentialExecutionBackend(ExecutionBackend):
    """One item at a time in the calling thread — for debugging and deterministic tests."""

    def map_unordered(
        self, fn: Callable[[T], R], items: Iterable[T], *, max_in_flight: int = 1
    ) -> Iterator[R]:
        for item in items:
            yield fn(item)


class LocalExecutionBackend(ExecutionBackend):
    """A thread pool on this machine (the default for blocking providers)."""

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            from ..errors import ConfigurationError

            raise ConfigurationError(f"max_workers must be >= 1, got {max_workers}")
        self.max_workers = max_workers

    def map_unordered(
        self, fn: Callable[[T], R], items: Iterable[T], *, max_in_flight: int
    ) -> Iterator[R]:
        limit = max(1, min(max_in_flight, self.max_workers or max_in_flight))
        iterator = iter(items)
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="themis") as pool:
            pending: set[Future[R]] = set()
            exhausted = False
            while True:
                while not exhausted and len(pending) < limit:
                    try:
                        item = next(iterator)
                    except StopIteration:
                        exhausted = True
                        break
                    pending.add(pool.submit(fn, item))
                if not pending:
                    return
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()

    def describe(self) -> dict[str, object]:
        return {"name": type(self).__name__, "max_workers": self.max_workers}
