"""The generation runner: bounded concurrency, retries, budgets; records stream out as done."""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..backends.execution import ExecutionBackend
from ..core.entities import (
    GenerationError,
    GenerationRecord,
    GenerationTask,
    ProviderResponse,
    redact_text,
)
from ..errors import ConfigurationError, ProviderError, RateLimitError
from .executors import TaskExecutor
from .failfast import FailFastExecutor
from .retry import AdaptiveLimiter, FixedLimiter, RetryPolicy

__all__ = ["GenerationRunner"]

_DONE = object()


class _Crash:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


#: ``processes="auto"`` starts worker processes only for at least this many requests.
AUTO_PROCESS_MIN_TASKS = 256

_LOOP: asyncio.AbstractEventLoop | None = None
_LOOP_LOCK = threading.Lock()


def _shared_loop() -> asyncio.AbstractEventLoop:
    """One event loop per process, on a daemon thread, shared by every run.

    Async clients (litellm's HTTP sessions, its logging worker) bind to the loop they first run
    on; keeping that loop alive lets them reuse connections across runs instead of breaking when
    a per-run loop closes. Blocking providers run on the loop's (large, lazily grown) thread pool.
    """
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None or _LOOP.is_closed():
            loop = asyncio.new_event_loop()
            loop.set_default_executor(
                ThreadPoolExecutor(max_workers=256, thread_name_prefix="themis-call")
            )
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            threading.Thread(target=serve, name="themis-loop", daemon=True).start()
            ready.wait()
            _LOOP = loop
        return _LOOP


def take_available(out: queue.SimpleQueue[Any], max_items: int) -> list[Any]:
    """Block for one item, then take whatever else is already queued, up to ``max_items``.

    Nothing waits to fill a batch: under load the items that arrived meanwhile come together.
    """
    items = [out.get()]
    while len(items) < max_items:
        try:
            items.append(out.get_nowait())
        except queue.Empty:
            break
    return items


def drain(out: queue.SimpleQueue[Any], max_batch: int) -> Iterator[list[Any]]:
    """Yield what producers put into ``out``, as :func:`take_available` lists, until ``_DONE``.

    A producer's ``_Crash`` is raised here, in the consumer's thread.
    """
    finished = False
    while not finished:
        items: list[Any] = []
        for item in take_available(out, max_batch):
            if item is _DONE:
                finished = True
            elif isinstance(item, _Crash):
                raise item.exc
            else:
                items.append(item)
        if items:
            yield items


async def _aiter(
    tasks: Iterator[GenerationTask] | AsyncIterator[GenerationTask],
) -> AsyncIterator[GenerationTask]:
    if isinstance(tasks, AsyncIterator):
        async for task in tasks:
            yield task
    else:
        for task in tasks:
            yield task


class GenerationRunner:
    """Runs tasks through an executor (a :class:`ProviderRouter` by default).

    - At most ``max_parallel`` requests are in flight; ``"auto"`` adapts the limit to the
      provider's 429s (AIMD). Tasks are pulled lazily from the iterable, never all at once.
    - Transient failures (429, 5xx, timeouts, resets, malformed bodies) are retried up to
      ``max_retries`` times with exponential backoff and jitter, never sooner than Retry-After;
      permanent ones (auth, bad request, not found) are not. What still fails becomes a
      :class:`GenerationRecord` with ``error`` set — never an exception, never a wrong answer.
    - With ``max_cost_usd``, no request starts once that much has been spent; the tasks not sent
      come back as ``budget`` errors.
    - Async-capable executors run on one event loop thread; blocking ones on a thread pool.
      Pass ``execution_backend`` to run blocking calls on your own infrastructure instead.
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
    ) -> None:
        if max_parallel != "auto" and (not isinstance(max_parallel, int) or max_parallel < 1):
            raise ConfigurationError(
                f"max_parallel must be a positive integer or 'auto', got {max_parallel!r}"
            )
        if processes != "auto" and (not isinstance(processes, int) or processes < 1):
            raise ConfigurationError(
                f"processes must be a positive integer or 'auto', got {processes!r}"
            )
        if max_retries < 0:
            raise ConfigurationError(f"max_retries must be >= 0, got {max_retries}")
        if timeout is not None and timeout <= 0:
            raise ConfigurationError(f"timeout must be > 0 seconds, got {timeout}")
        if max_cost_usd is not None and max_cost_usd < 0:
            raise ConfigurationError(f"max_cost_usd must be >= 0, got {max_cost_usd}")
        if executor is None:
            from .router import ProviderRouter

            executor = ProviderRouter()
        self.executor: TaskExecutor = FailFastExecutor(executor)  # stop endpoints that never answer
        self.max_parallel = max_parallel
        self.max_retries = max_retries
        self.execution_backend = execution_backend
        self.timeout = timeout
        self.max_cost_usd = max_cost_usd
        self.processes = processes
        #: Records produced by worker processes (not this one) so far; see ``processes``.
        self.records_from_workers = 0
        #: Called on every 429, when set (worker processes report them to their parent).
        self.rate_limit_listener: Callable[[], None] | None = None
        self.retry_policy = RetryPolicy(max_retries, retry_base_delay, retry_max_delay, seed)
        self.spent_usd = 0.0
        self._spent_lock = threading.Lock()

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
        transaction instead of one per record.
        """
        if self.execution_backend is not None:
            limit = self.max_parallel if isinstance(self.max_parallel, int) else 16
            for record in self.execution_backend.map_unordered(
                self._run_one_sync, tasks, max_in_flight=limit
            ):
                yield [record]
            return
        processes, tasks = self._choose_processes(tasks)
        if processes > 1:
            from .processes import run_in_processes

            yield from run_in_processes(self, tasks, processes, max_batch)
            return
        yield from self._run_async(tasks, max_batch)

    def _choose_processes(
        self, tasks: Iterable[GenerationTask]
    ) -> tuple[int, Iterable[GenerationTask]]:
        """How many worker processes to use; ``"auto"`` peeks at the first tasks to decide.

        Auto uses one worker per core (up to four) only when it pays: the default router, every
        model served by litellm (whose client costs milliseconds of CPU per call), wide
        concurrency, and at least ``AUTO_PROCESS_MIN_TASKS`` requests to send — or whenever a
        prestarted worker pool is waiting (see :func:`.processes.prestart`).
        """
        if isinstance(self.processes, int):
            return self.processes, tasks
        if self.max_cost_usd is not None:
            # The budget is checked before each request; workers get tasks in windows, so
            # they would start requests after the money is spent.
            return 1, tasks
        from .processes import default_processes, pool_size
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
        self.executor.close()

    # -- budget -------------------------------------------------------------------------------

    def _budget_spent(self) -> bool:
        return self.max_cost_usd is not None and self.spent_usd >= self.max_cost_usd

    def _charge(self, cost: float | None) -> None:
        if cost:
            with self._spent_lock:
                self.spent_usd += cost

    def _budget_record(self, task: GenerationTask) -> GenerationRecord:
        return GenerationRecord(
            task=task,
            error=GenerationError(
                kind="budget",
                type="BudgetExceededError",
                message=(
                    f"not sent: the cost budget of ${self.max_cost_usd:g} was spent "
                    f"(${self.spent_usd:.6g}); raise --themis-max-cost-usd / max_cost_usd"
                ),
            ),
        )

    # -- records ------------------------------------------------------------------------------

    def _success(
        self, task: GenerationTask, response: ProviderResponse, started: float, attempts: int
    ) -> GenerationRecord:
        self._charge(response.cost)
        return GenerationRecord(
            task=task,
            text=response.text,
            usage=response.usage,
            cost=response.cost,
            latency=time.perf_counter() - started,
            finish_reason=response.finish_reason,
            attempts=attempts,
        )

    @staticmethod
    def _failure(
        task: GenerationTask, exc: BaseException, started: float, attempts: int
    ) -> GenerationRecord:
        if isinstance(exc, ProviderError):
            kind = "transient" if exc.transient else "permanent"
            status = exc.status_code
        else:
            kind, status = "permanent", None
        message = redact_text(str(exc) or type(exc).__name__, task.model.options)
        if attempts > 1:
            message = f"{message} (after {attempts} attempts)"
        return GenerationRecord(
            task=task,
            error=GenerationError(kind, type(exc).__name__, message, status),
            latency=time.perf_counter() - started,
            attempts=attempts,
        )

    # -- blocking path ------------------------------------------------------------------------

    def _run_one_sync(self, task: GenerationTask) -> GenerationRecord:
        started = time.perf_counter()
        attempt = 0
        while True:
            if self._budget_spent():
                return self._budget_record(task)
            attempt += 1
            try:
                response = self.executor.execute(task, timeout=self.timeout)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a record
                wait = self.retry_policy.delay(attempt, exc)
                if wait is None:
                    return self._failure(task, exc, started, attempt)
                time.sleep(wait)
                continue
            return self._success(task, response, started, attempt)

    # -- async path ---------------------------------------------------------------------------

    def _run_async(
        self, tasks: Iterable[GenerationTask], max_batch: int
    ) -> Iterator[list[GenerationRecord]]:
        out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        stop = threading.Event()
        future = asyncio.run_coroutine_threadsafe(
            self._produce_then_signal(iter(tasks), out, stop), _shared_loop()
        )
        try:
            yield from drain(out, max_batch)
        finally:
            stop.set()
            future.result()

    async def _produce_then_signal(
        self, tasks: Iterator[GenerationTask], out: queue.SimpleQueue[Any], stop: threading.Event
    ) -> None:
        try:
            await self._produce(tasks, out, stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            out.put(_Crash(exc))
        finally:
            out.put(_DONE)

    async def _produce(
        self,
        tasks: Iterator[GenerationTask] | AsyncIterator[GenerationTask],
        out: Any,
        stop: threading.Event,
        limit: int | None = None,
    ) -> None:
        """Run ``tasks`` on the running loop, putting records into ``out``.

        ``limit`` replaces ``max_parallel`` (a parent that hands out tasks in measured windows
        passes a large one: the window it controls is then the real bound).
        """
        if limit is not None:
            fixed: FixedLimiter | None = FixedLimiter(limit)
        elif self.max_parallel != "auto":
            fixed = FixedLimiter(int(self.max_parallel))
        else:
            fixed = None
        adaptive: dict[tuple[str, str | None], AdaptiveLimiter] = {}

        def limiter_for(task: GenerationTask) -> FixedLimiter | AdaptiveLimiter:
            if fixed is not None:
                return fixed
            key = (task.model.provider, task.model.api_base)
            if key not in adaptive:
                adaptive[key] = AdaptiveLimiter()
            return adaptive[key]

        use_async = getattr(self.executor, "supports_async", False)
        pending: set[asyncio.Task[None]] = set()

        async def one(task: GenerationTask, limiter: FixedLimiter | AdaptiveLimiter) -> None:
            try:
                out.put(await self._run_one_async(task, limiter, use_async))
            finally:
                limiter.release()

        async for task in _aiter(tasks):
            if stop.is_set():
                break
            limiter = limiter_for(task)
            await limiter.acquire()
            if stop.is_set():
                limiter.release()
                break
            job = asyncio.ensure_future(one(task, limiter))
            pending.add(job)
            job.add_done_callback(pending.discard)
        if stop.is_set():
            for job in pending:
                job.cancel()
        if pending:
            results = await asyncio.gather(*pending, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException) and not isinstance(
                    result, asyncio.CancelledError
                ):
                    raise result

    async def _run_one_async(
        self, task: GenerationTask, limiter: FixedLimiter | AdaptiveLimiter, use_async: bool
    ) -> GenerationRecord:
        started = time.perf_counter()
        attempt = 0
        loop = asyncio.get_running_loop()
        while True:
            if self._budget_spent():
                return self._budget_record(task)
            attempt += 1
            try:
                if use_async:
                    response = await self.executor.aexecute(task, timeout=self.timeout)
                else:
                    response = await loop.run_in_executor(None, self._call_sync, task)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes a record
                retry_after = getattr(exc, "retry_after", None)
                if isinstance(exc, RateLimitError):
                    limiter.on_rate_limit(retry_after)
                    if self.rate_limit_listener is not None:
                        self.rate_limit_listener()
                wait = self.retry_policy.delay(attempt, exc)
                if wait is None:
                    return self._failure(task, exc, started, attempt)
                # Give the slot back while waiting so other tasks keep the pipe full.
                limiter.release()
                try:
                    await asyncio.sleep(wait)
                finally:
                    await limiter.acquire()
                continue
            limiter.on_success()
            return self._success(task, response, started, attempt)

    def _call_sync(self, task: GenerationTask) -> ProviderResponse:
        return self.executor.execute(task, timeout=self.timeout)
