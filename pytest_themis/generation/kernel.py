"""The generation kernel: the one retry loop, the limiter, the cost budget.

Every execution strategy (this process's event loop, local worker processes, Ray actors, Dask
workers) turns tasks into records through a :class:`GenerationKernel`; strategies only decide
where the kernel runs and how tasks reach it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from typing import Any, cast

from ..core.defaults import AUTO_PARALLEL_CEILING
from ..core.entities import (
    GenerationError,
    GenerationRecord,
    GenerationTask,
    ProviderResponse,
    redact_text,
)
from ..errors import ProviderError, RateLimitError
from .executors import TaskExecutor
from .retry import AdaptiveLimiter, FixedLimiter
from .settings import BatchResult, Budget, Cancellation, Limiter, RunSettings
from .streams import END, crash, drain, shared_loop

__all__ = ["GenerationKernel", "failure_record"]

#: How long closing a stream waits for cancelled requests to unwind.
_CANCEL_GRACE = 1.0


async def _aiter(
    tasks: Iterable[GenerationTask] | AsyncIterator[GenerationTask],
) -> AsyncIterator[GenerationTask]:
    if isinstance(tasks, AsyncIterator):
        async for task in tasks:
            yield task
    else:
        for task in tasks:
            yield task


class GenerationKernel:
    """Turns tasks into records: bounded concurrency, retries with backoff, the budget.

    Transient failures (429, 5xx, timeouts …) are retried up to ``settings.max_retries`` times,
    never sooner than Retry-After; what still fails becomes a record with ``error`` set.
    ``on_rate_limit`` (optional) hears of every 429, e.g. to feed a window spanning processes.
    """

    def __init__(
        self,
        executor: TaskExecutor,
        settings: RunSettings,
        *,
        on_rate_limit: Callable[[], None] | None = None,
    ) -> None:
        self.executor = executor
        self.settings = settings
        self.retry_policy = settings.retry_policy()
        self.on_rate_limit = on_rate_limit

    # -- limiters -----------------------------------------------------------------------------

    def limiters(self, limit: int | None = None) -> Callable[[GenerationTask], Limiter]:
        """The limiter for each task: one fixed cap (``limit`` overrides the settings') or,
        for ``"auto"``, one adaptive window per (provider, api base)."""
        cap = limit if limit is not None else self.settings.fixed_limit
        if cap is not None:
            fixed = FixedLimiter(cap)
            return lambda task: fixed
        adaptive: dict[tuple[str, str | None], AdaptiveLimiter] = {}

        def choose(task: GenerationTask) -> Limiter:
            key = (task.model.provider, task.model.api_base)
            if key not in adaptive:
                adaptive[key] = AdaptiveLimiter()
            return adaptive[key]

        return choose

    # -- async path ---------------------------------------------------------------------------

    async def produce(
        self,
        tasks: Iterable[GenerationTask] | AsyncIterator[GenerationTask],
        emit: Callable[[GenerationRecord], None],
        *,
        limiter: Callable[[GenerationTask], Limiter] | None = None,
        budget: Budget | None = None,
        stop: threading.Event | None = None,
        on_rate_limit: Callable[[], None] | None = None,
    ) -> None:
        """Run ``tasks`` on the running loop, calling ``emit`` with each finished record.

        Tasks are pulled only when a slot is free. Setting ``stop`` (or cancelling this
        coroutine) cancels the requests in flight; records already emitted stay emitted.
        """
        choose = limiter or self.limiters()
        budget = budget or Budget(self.settings.max_cost_usd)
        call = self._caller()
        pending: set[asyncio.Task[None]] = set()

        async def one(task: GenerationTask, gate: Limiter) -> None:
            try:
                emit(await self._run_one(task, gate, budget, call, asyncio.sleep, on_rate_limit))
            finally:
                gate.release()

        try:
            async for task in _aiter(tasks):
                if stop is not None and stop.is_set():
                    break
                gate = choose(task)
                await gate.acquire()
                if stop is not None and stop.is_set():
                    gate.release()
                    break
                job = asyncio.ensure_future(one(task, gate))
                pending.add(job)
                job.add_done_callback(pending.discard)
            if stop is not None and stop.is_set():
                for job in pending:
                    job.cancel()
            await _gather(pending)
        except asyncio.CancelledError:
            for job in pending:
                job.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            raise

    async def _run_one(
        self,
        task: GenerationTask,
        gate: Limiter,
        budget: Budget,
        call: Callable[[GenerationTask], Awaitable[ProviderResponse]],
        sleep: Callable[[float], Awaitable[None]],
        on_rate_limit: Callable[[], None] | None,
    ) -> GenerationRecord:
        """One task with retries: the one retry loop of every path (see :meth:`run_one_sync`)."""
        started = time.perf_counter()
        attempt = 0
        while True:
            if budget.exhausted:
                return budget.record(task)
            attempt += 1
            try:
                response = await call(task)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes a record
                if isinstance(exc, RateLimitError):
                    gate.on_rate_limit(exc.retry_after)
                    for listener in (on_rate_limit, self.on_rate_limit):
                        if listener is not None:
                            listener()
                wait = self.retry_policy.delay(attempt, exc)
                if wait is None:
                    return failure_record(task, exc, started, attempt)
                # Give the slot back while waiting so other tasks keep the pipe full.
                gate.release()
                try:
                    await sleep(wait)
                finally:
                    await gate.acquire()
                continue
            gate.on_success()
            return self._success(task, response, started, attempt, budget)

    def _caller(self) -> Callable[[GenerationTask], Awaitable[ProviderResponse]]:
        """How the running loop calls the executor: natively async, or on the loop's threads."""
        if getattr(self.executor, "supports_async", False):
            timeout = self.settings.timeout

            async def call_async(task: GenerationTask) -> ProviderResponse:
                return await self.executor.aexecute(task, timeout=timeout)

            return call_async
        loop = asyncio.get_running_loop()

        async def call_in_thread(task: GenerationTask) -> ProviderResponse:
            return await loop.run_in_executor(None, self._call, task)

        return call_in_thread

    def _call(self, task: GenerationTask) -> ProviderResponse:
        return self.executor.execute(task, timeout=self.settings.timeout)

    @staticmethod
    def _success(
        task: GenerationTask,
        response: ProviderResponse,
        started: float,
        attempts: int,
        budget: Budget,
    ) -> GenerationRecord:
        budget.charge(response.cost)
        return GenerationRecord(
            task=task,
            text=response.text,
            usage=response.usage,
            cost=response.cost,
            latency=time.perf_counter() - started,
            finish_reason=response.finish_reason,
            attempts=attempts,
        )

    # -- blocking path ------------------------------------------------------------------------

    def run_one_sync(self, task: GenerationTask, budget: Budget | None = None) -> GenerationRecord:
        """One task in the calling thread, with the same retry loop (for ``map_unordered``).

        The loop's every await is made blocking here (the call, the backoff sleep, a limiter
        that never waits), so the coroutine finishes without an event loop.
        """
        budget = budget or Budget(self.settings.max_cost_usd)

        async def call(task: GenerationTask) -> ProviderResponse:
            return self._call(task)

        async def sleep(seconds: float) -> None:
            time.sleep(seconds)

        return _finish(self._run_one(task, _NoLimit(), budget, call, sleep, None))

    # -- sync entry points --------------------------------------------------------------------

    def run_batch(
        self,
        tasks: list[GenerationTask],
        *,
        limit: int | None = None,
        cancellation: Cancellation | None = None,
    ) -> BatchResult:
        """Run one batch on this process's shared event loop and wait for all of it.

        What a remote worker calls. ``limit`` caps the batch's concurrency (default: the
        settings' fixed cap, or the batch size for ``"auto"``, whose window the caller keeps).
        Once ``cancellation`` is cancelled, the batch's requests are cancelled and the records
        finished so far are returned.
        """
        result = BatchResult()
        if not tasks:
            return result
        cap = limit or self.settings.fixed_limit or len(tasks)

        def count() -> None:
            result.rate_limited += 1

        future = asyncio.run_coroutine_threadsafe(
            self.produce(
                tasks, result.records.append, limiter=self.limiters(cap), on_rate_limit=count
            ),
            shared_loop(),
        )
        if cancellation is not None:
            cancellation.add(future)
        try:
            future.result()
        except concurrent.futures.CancelledError:
            if cancellation is None or not cancellation.cancelled:
                raise
        except BaseException:
            future.cancel()
            raise
        finally:
            if cancellation is not None:
                cancellation.discard(future)
        return result

    def stream(
        self,
        tasks: Iterable[GenerationTask],
        *,
        max_batch: int = 256,
        budget: Budget | None = None,
        limit: int | None = None,
    ) -> Iterator[list[GenerationRecord]]:
        """Run ``tasks`` on the shared loop; yield the records finished so far, in lists.

        No new request starts while a window's worth of finished records (``limit``, else the
        settings' fixed limit, else :data:`AUTO_PARALLEL_CEILING`) waits for the caller, so a
        caller that falls behind (a slow disk, scoring on a busy machine) holds at most that
        many records a killed process would lose. Closing the iterator (or Ctrl-C while it
        waits) cancels the requests in flight.
        """
        out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        loop = shared_loop()
        backlog = _Backlog(limit or self.settings.fixed_limit or AUTO_PARALLEL_CEILING, loop)

        def emit(record: GenerationRecord) -> None:
            backlog.add()
            out.put(record)

        async def gated() -> AsyncIterator[GenerationTask]:
            for task in tasks:
                await backlog.room()
                yield task

        async def main() -> None:
            try:
                await self.produce(gated(), emit, limiter=self.limiters(limit), budget=budget)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
                out.put(crash(exc))
            finally:
                out.put(END)

        future = asyncio.run_coroutine_threadsafe(main(), loop)
        try:
            for records in drain(out, max_batch):
                yield records
                backlog.take(len(records))  # the caller is done with them (stored, scored)
        finally:
            if not future.done():
                future.cancel()
                concurrent.futures.wait([future], timeout=_CANCEL_GRACE)


class _Backlog:
    """Finished records handed to the consumer thread and not yet taken back; :meth:`room`
    (on the loop) waits while ``limit`` of them are out."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        self.limit = max(1, limit)
        self._count = 0
        self._lock = threading.Lock()
        self._loop = loop
        self._freed = asyncio.Event()

    def add(self) -> None:
        with self._lock:
            self._count += 1

    def take(self, n: int) -> None:
        """From the consumer's thread: ``n`` records are done with."""
        with self._lock:
            was_full = self._count >= self.limit
            self._count -= n
            wake = was_full and self._count < self.limit
        if wake:
            self._loop.call_soon_threadsafe(self._freed.set)

    async def room(self) -> None:
        while True:
            with self._lock:
                if self._count < self.limit:
                    return
                self._freed.clear()  # under the lock: a take after this check sets it again
            await self._freed.wait()


class _NoLimit:
    """A :class:`Limiter` that never waits (one blocking call at a time needs none)."""

    async def acquire(self) -> None:
        return None

    def release(self) -> None:
        return None

    def on_success(self) -> None:
        return None

    def on_rate_limit(self, retry_after: float | None) -> None:
        return None


def _finish(coro: Coroutine[Any, Any, GenerationRecord]) -> GenerationRecord:
    """The result of a coroutine that never suspends (every await in it blocks instead)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return cast(GenerationRecord, done.value)
    coro.close()
    raise RuntimeError("a blocking retry step suspended; it must not await the event loop")


async def _gather(pending: set[asyncio.Task[None]]) -> None:
    if not pending:
        return
    for result in await asyncio.gather(*pending, return_exceptions=True):
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


def failure_record(
    task: GenerationTask, exc: BaseException, started: float, attempts: int
) -> GenerationRecord:
    """The error record of a task that failed for good (secrets redacted from the message)."""
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
