"""This machine's engines: the event loop of this process, and local worker processes.

What ``execution_backend="local"`` (the default) means: a
:class:`~pytest_themis.generation.runner.GenerationRunner` given no backend picks one of these
for each run (worker processes when they pay, see its ``processes`` argument).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .execution import ExecutionBackend, ExecutionJob

if TYPE_CHECKING:
    from ..core.entities import GenerationRecord
    from ..generation.processes import ProcessStrategy

__all__ = ["InProcessExecutionBackend", "WorkerProcessExecutionBackend"]


class InProcessExecutionBackend(ExecutionBackend):
    """Every request on this process's shared event loop (the kernel's async path).

    Closing the record stream (or Ctrl-C while it waits) cancels the requests in flight.
    """

    def run(self, job: ExecutionJob) -> Iterator[list[GenerationRecord]]:
        with job.kernel() as kernel:
            yield from kernel.stream(job.tasks, max_batch=job.max_batch, budget=job.budget)


class WorkerProcessExecutionBackend(ExecutionBackend):
    """Requests spread over ``processes`` processes on this machine (this one included).

    Each worker process runs a kernel on its own event loop, so a CPU-heavy client library
    (litellm) uses every core; this process keeps the budget and the order records come back
    in. A prestarted pool (:func:`pytest_themis.generation.pool.prestart`) is used first.
    A dead worker's unanswered tasks go to the others, or run here: each task yields one record.
    """

    def __init__(self, processes: int) -> None:
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
            from ..errors import ConfigurationError

            raise ConfigurationError(f"processes must be a positive integer, got {processes!r}")
        self.processes = processes
        self._strategy: ProcessStrategy | None = None

    @property
    def records_from_workers(self) -> int:
        """Records the last (or current) run got from worker processes, not this one."""
        return self._strategy.records_from_workers if self._strategy is not None else 0

    def run(self, job: ExecutionJob) -> Iterator[list[GenerationRecord]]:
        # Deferred: the process machinery is imported only by a run that uses it.
        from ..generation.processes import ProcessStrategy

        with job.kernel() as kernel:
            self._strategy = ProcessStrategy(kernel, job.budget, self.processes)
            yield from self._strategy.run(job.tasks, job.max_batch)

    def describe(self) -> dict[str, object]:
        return {"name": type(self).__name__, "processes": self.processes}
