"""Execution backends: where a run's requests are sent from.

A backend gets an :class:`ExecutionJob` (the task stream, the executor, the run settings, the
cost budget) and yields lists of finished records. Simple backends only implement
:meth:`ExecutionBackend.map_unordered`; the default :meth:`ExecutionBackend.run` drives it with
the kernel's blocking call, one task per call. Engines that can do better override
:meth:`ExecutionBackend.run`: this process's event loop and local worker processes
(:mod:`~pytest_themis.backends.local`), Ray and Dask
(:class:`~pytest_themis.backends._remote.RemoteExecutionBackend`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from ..core.entities import GenerationRecord, GenerationTask
    from ..core.protocols import EvaluationPipelineProtocol
    from ..generation.executors import TaskExecutor
    from ..generation.kernel import GenerationKernel
    from ..generation.settings import Budget, RunSettings
    from .scoring import Scorer

__all__ = [
    "ExecutionBackend",
    "ExecutionJob",
    "LocalExecutionBackend",
    "SequentialExecutionBackend",
]

T = TypeVar("T")
R = TypeVar("R")

#: Concurrency a backend uses when ``max_parallel`` is ``"auto"`` and it has no window of its own.
DEFAULT_AUTO_LIMIT = 16


@dataclass
class ExecutionJob:
    """One run's work for a backend.

    ``executor`` None means the default executor for ``settings.client``
    (:func:`~pytest_themis.generation.router.default_executor`), built where the requests are
    sent, so a remote worker imports its own providers.
    """

    tasks: Iterable[GenerationTask]
    executor: TaskExecutor | None
    settings: RunSettings
    budget: Budget
    max_batch: int = 256

    @contextmanager
    def kernel(self) -> Iterator[GenerationKernel]:
        """A kernel for this job in this process; a default executor made for it is closed
        when the block ends."""
        from ..generation.kernel import GenerationKernel
        from ..generation.router import default_executor

        executor = (
            self.executor if self.executor is not None else default_executor(self.settings.client)
        )
        try:
            yield GenerationKernel(executor, self.settings)
        finally:
            if executor is not self.executor:
                executor.close()

    @property
    def limit(self) -> int:
        """The fixed concurrency cap (``"auto"`` counts as :data:`DEFAULT_AUTO_LIMIT`)."""
        return self.settings.fixed_limit or DEFAULT_AUTO_LIMIT


class ExecutionBackend:
    """Where generation work runs. Subclass to move it to Ray, Dask, a job queue …

    Implement either :meth:`map_unordered` (the default :meth:`run` drives it) or :meth:`run`.
    :meth:`map_unordered` must pull ``items`` lazily, keep at most ``max_in_flight`` calls running,
    and yield results as they complete (in any order). ``fn`` never raises for provider failures:
    the kernel turns those into error records before they reach the backend.
    """

    def map_unordered(
        self, fn: Callable[[T], R], items: Iterable[T], *, max_in_flight: int
    ) -> Iterator[R]:
        """Yield ``fn(item)`` for every item, as each completes."""
        raise NotImplementedError(
            f"{type(self).__name__} implements neither map_unordered() nor run(); "
            "implement one of them"
        )

    def open(self) -> None:
        """Connect and validate before any request is sent.

        Raise :class:`~pytest_themis.errors.ConfigurationError` with a one-line fix when the
        backend cannot work (engine not installed, address unreachable).
        """

    def run(self, job: ExecutionJob) -> Iterator[list[GenerationRecord]]:
        """Yield the records of ``job``'s tasks, in lists, as they finish (one per task)."""
        self.open()
        with job.kernel() as kernel:

            def one(task: GenerationTask) -> GenerationRecord:
                return kernel.run_one_sync(task, job.budget)

            for record in self.map_unordered(one, job.tasks, max_in_flight=job.limit):
                yield [record]

    def open_scoring(self, pipeline: EvaluationPipelineProtocol) -> Scorer:
        """A :class:`~pytest_themis.backends.scoring.Scorer` of ``pipeline`` on this backend.

        The default scores in this process. Engines with workers elsewhere (Ray, Dask) override
        it to score there; ``score_on_engine`` needs such a backend.
        """
        from .scoring import LocalScorer  # deferred: loaded only by runs that score here

        return LocalScorer(pipeline)

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
    """A thread pool on this machine (blocking calls, one thread per request in flight)."""

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
