"""The generation runner: picks where generation runs; the kernel does the sending."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

from ..backends.execution import ExecutionBackend, ExecutionJob
from ..backends.local import InProcessExecutionBackend, WorkerProcessExecutionBackend
from ..core.entities import GenerationRecord, GenerationTask
from ..errors import ConfigurationError
from .executors import TaskExecutor
from .settings import Budget, RunSettings

__all__ = ["AUTO_PROCESS_MIN_TASKS", "GenerationRunner"]

#: ``processes="auto"`` starts worker processes only for at least this many requests.
AUTO_PROCESS_MIN_TASKS = 256


class GenerationRunner:
    """Runs tasks through an executor (a fail-fast :class:`ProviderRouter` by default).

    - At most ``max_parallel`` requests are in flight; ``"auto"`` adapts the limit to the
      provider's 429s (AIMD). Tasks are pulled lazily from the iterable, never all at once.
    - Transient failures (429, 5xx, timeouts, resets, malformed bodies) are retried up to
      ``max_retries`` times with exponential backoff and jitter, never sooner than Retry-After;
      permanent ones (auth, bad request, not found) are not. What still fails becomes a
      :class:`GenerationRecord` with ``error`` set — never an exception, never a wrong answer.
    - With ``max_cost_usd``, no request starts once that much has been spent; the tasks not sent
      come back as ``budget`` errors.
    - The runner only picks an :class:`ExecutionBackend` for each run and hands it the job: by
      default :class:`InProcessExecutionBackend` (this process's event loop), or
      :class:`WorkerProcessExecutionBackend` when worker processes pay (``processes``); pass
      ``execution_backend`` to run the requests elsewhere (Ray, Dask, …).
    - ``client`` is the HTTP client of litellm models for the default router (``auto``,
      ``litellm``, ``native``; see :mod:`pytest_themis.providers.clients`) — transport only; a
      router passed as ``executor`` keeps its own. Worker processes, Ray and Dask use it too.
    """

    def __init__(
        self,
        executor: TaskExecutor | None = None,
        *,
        max_parallel: int | str = 16,
        max_retries: int = 3,
        execution_backend: ExecutionBackend | None = None,
        timeout: float | None = 60.0,
        max_cost_usd: float | None = None,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 30.0,
        seed: int | None = None,
        processes: int | str = "auto",
        client: str | None = None,
    ) -> None:
        from ..providers.clients import check_client

        # Workers build the default executor from the settings: a default router given here
        # carries its client choice to them.
        self.client = check_client(getattr(executor, "client", client))
        if processes != "auto" and (not isinstance(processes, int) or processes < 1):
            raise ConfigurationError(
                f"processes must be a positive integer or 'auto', got {processes!r}"
            )
        self.settings = RunSettings(
            max_parallel=max_parallel,
            max_retries=max_retries,
            timeout=timeout,
            retry_base_delay=retry_base_delay,
            retry_max_delay=retry_max_delay,
            seed=seed,
            max_cost_usd=max_cost_usd,
            client=self.client,
        )
        self._executor = executor
        #: What the caller passed: None sends remote engines their own default router.
        self._given_executor = executor
        self.execution_backend = execution_backend
        self.processes = processes
        self.budget = Budget(max_cost_usd)
        #: The backend of the last run (the one given, or the local one chosen).
        self.last_backend: ExecutionBackend | None = None

    # -- settings, kept readable under their old names ---------------------------------------

    @property
    def executor(self) -> TaskExecutor:
        """The executor; the default one (:func:`.router.default_executor`) is made on first use."""
        if self._executor is None:
            from .router import default_executor

            self._executor = default_executor(self.client)
        return self._executor

    @property
    def max_parallel(self) -> int | str:
        return self.settings.max_parallel

    @property
    def max_retries(self) -> int:
        return self.settings.max_retries

    @property
    def timeout(self) -> float | None:
        return self.settings.timeout

    @property
    def max_cost_usd(self) -> float | None:
        return self.settings.max_cost_usd

    @property
    def spent_usd(self) -> float:
        return self.budget.spent_usd

    @property
    def records_from_workers(self) -> int:
        """Records the last run got from worker processes (not this one)."""
        return int(getattr(self.last_backend, "records_from_workers", 0))

    # -- public -------------------------------------------------------------------------------

    def run(self, tasks: Iterable[GenerationTask]) -> Iterator[GenerationRecord]:
        """Yield one record per task, in completion order."""
        for batch in self.run_batches(tasks):
            yield from batch

    def run_batches(
        self, tasks: Iterable[GenerationTask], max_batch: int = 256
    ) -> Iterator[list[GenerationRecord]]:
        """Like :meth:`run`, but yield every record that has already finished in one list.

        Nothing waits to fill a batch: a lone record comes out alone, at once. Under load the
        records that completed meanwhile come together, so the caller can persist them in one
        transaction instead of one per record. An empty task stream creates nothing: no
        provider, no worker.
        """
        iterator = iter(tasks)
        first = next(iterator, None)
        if first is None:
            return
        tasks = itertools.chain([first], iterator)
        if self.execution_backend is not None:
            # None: a remote engine builds the default executor where it sends the requests.
            backend, executor = self.execution_backend, self._given_executor
        else:
            backend, tasks = self._choose_backend(tasks)
            executor = self.executor
        self.last_backend = backend
        yield from backend.run(ExecutionJob(tasks, executor, self.settings, self.budget, max_batch))

    def _choose_backend(
        self, tasks: Iterable[GenerationTask]
    ) -> tuple[ExecutionBackend, Iterable[GenerationTask]]:
        """This machine's backend for a run: worker processes when they pay, else in-process."""
        processes, tasks = self._choose_processes(tasks)
        if processes > 1:
            return WorkerProcessExecutionBackend(processes), tasks
        return InProcessExecutionBackend(), tasks

    def _choose_processes(
        self, tasks: Iterable[GenerationTask]
    ) -> tuple[int, Iterable[GenerationTask]]:
        """How many worker processes to use; ``"auto"`` peeks at the first tasks to decide.

        Auto uses one worker per core (up to four) only when it pays: the default router, every
        model served by litellm (whose client costs milliseconds of CPU per call), wide
        concurrency, and at least ``AUTO_PROCESS_MIN_TASKS`` requests to send — or whenever a
        prestarted worker pool is waiting (see :func:`.pool.prestart`).
        """
        if isinstance(self.processes, int):
            return self.processes, tasks
        if self.max_cost_usd is not None:
            # The budget is checked before each request; workers get tasks in windows, so
            # they would start requests after the money is spent.
            return 1, tasks
        from .pool import default_processes, pool_size
        from .router import ProviderRouter

        cores = default_processes()
        pooled = pool_size() > 0
        wide = self.max_parallel == "auto" or int(self.max_parallel) >= 16
        router = getattr(self.executor, "inner", self.executor)
        default_router = isinstance(router, ProviderRouter) and router.is_default
        if not default_router or (not pooled and (cores < 2 or not wide)):
            return 1, tasks
        iterator = iter(tasks)
        peeked = list(itertools.islice(iterator, AUTO_PROCESS_MIN_TASKS))
        rest = itertools.chain(peeked, iterator)
        if not peeked or (len(peeked) < AUTO_PROCESS_MIN_TASKS and not pooled):
            return 1, rest
        # Only litellm's client is worth the processes (the native one costs far less per call).
        if not isinstance(router, ProviderRouter) or any(
            "fn" in t.model.options or router.client_for(t.model) != "litellm" for t in peeked
        ):
            return 1, rest
        return cores, rest

    def describe(self) -> dict[str, Any]:
        return {
            "max_parallel": self.max_parallel,
            "max_retries": self.max_retries,
            "timeout": self.timeout,
            "max_cost_usd": self.max_cost_usd,
            "executor": type(getattr(self.executor, "inner", self.executor)).__name__,
            "execution_backend": (
                self.execution_backend.describe() if self.execution_backend else None
            ),
        }

    def close(self) -> None:
        if self._executor is not None:
            self._executor.close()
