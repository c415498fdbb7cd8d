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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from ..core.entities import (
    GenerationError,
    GenerationRecord,
    GenerationTask,
    ProviderResponse,
    redact_text,
)
from ..errors import ConfigurationError, ProviderError, RateLimitError
from .executors import TaskExecutor
from .retry import AdaptiveLimiter, FixedLimiter, RetryPolicy

__all__ = [
    "END",
    "BatchResult",
    "Budget",
    "Cancellation",
    "GenerationKernel",
    "Limiter",
    "RunSettings",
    "crash",
    "drain",
    "failure_record",
    "shared_loop",
    "take_available",
]

#: How long closing a stream waits for cancelled requests to unwind.
_CANCEL_GRACE = 1.0


class Limiter(Protocol):
    """A concurrency gate: :class:`FixedLimiter` or :class:`AdaptiveLimiter`."""

    async def acquire(self) -> None: ...
    def release(self) -> None: ...
    def on_success(self) -> None: ...
    def on_rate_limit(self, retry_after: float | None) -> None: ...


@dataclass(frozen=True)
class RunSettings:
    """How a run sends requests; frozen and picklable, so remote workers get the same rules."""

    max_parallel: int | str = 16
    max_retries: int = 3
    timeout: float | None = 60.0
    retry_base_delay: float = 0.5
    retry_max_delay: float = 30.0
    seed: int | None = None
    max_cost_usd: float | None = None
    #: HTTP client of litellm models in the default executor (``auto``/``litellm``/``native``;
    #: None: ``THEMIS_CLIENT`` where the requests are sent, else ``auto``).
    client: str | None = None

    def __post_init__(self) -> None:
        if self.client is not None:
            from ..providers.clients import check_client

            object.__setattr__(self, "client", check_client(self.client))
        mp = self.max_parallel
        if mp != "auto" and (isinstance(mp, bool) or not isinstance(mp, int) or mp < 1):
            raise ConfigurationError(
                f"max_parallel must be a positive integer or 'auto', got {mp!r}"
            )
        if self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigurationError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.max_cost_usd is not None and self.max_cost_usd < 0:
            raise ConfigurationError(f"max_cost_usd must be >= 0, got {self.max_cost_usd}")

    @property
    def adaptive(self) -> bool:
        """Whether ``max_parallel`` is ``"auto"`` (an AIMD window)."""
        return self.max_parallel == "auto"

    @property
    def fixed_limit(self) -> int | None:
        """The fixed concurrency cap, or None for ``"auto"``."""
        return None if self.adaptive else int(self.max_parallel)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_retries, self.retry_base_delay, self.retry_max_delay, self.seed)


class Budget:
    """Thread-safe spend tracking against ``max_cost_usd`` (None: no budget)."""

    def __init__(self, max_cost_usd: float | None = None) -> None:
        self.max_cost_usd = max_cost_usd
        self.spent_usd = 0.0
        self._lock = threading.Lock()

    @property
    def exhausted(self) -> bool:
        return self.max_cost_usd is not None and self.spent_usd >= self.max_cost_usd

    def charge(self, cost: float | None) -> None:
        if cost:
            with self._lock:
                self.spent_usd += cost

    def record(self, task: GenerationTask) -> GenerationRecord:
        """The error record of a task not sent because the budget was spent."""
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


@dataclass
class BatchResult:
    """What a worker returns for one batch: one record per task, and how many 429s it saw."""

    records: list[GenerationRecord] = field(default_factory=list)
    rate_limited: int = 0


class Cancellation:
    """Cancels the batches run under it (:meth:`GenerationKernel.run_batch`), now and later.

    Thread-safe: a remote worker cancels a run's batches from another thread when the driver
    has stopped reading the run's records.
    """

    def __init__(self) -> None:
        self.cancelled = False
        self._running: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            running, self._running = self._running, set()
        for future in running:
            future.cancel()

    def add(self, future: concurrent.futures.Future[Any]) -> None:
        """Cancel ``future`` with the others (at once, when already cancelled)."""
        with self._lock:
            if not self.cancelled:
                self._running.add(future)
                return
        future.cancel()

    def discard(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._running.discard(future)


_LOOP: asyncio.AbstractEventLoop | None = None
_LOOP_LOCK = threading.Lock()


def shared_loop() -> asyncio.AbstractEventLoop:
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

        Closing the iterator (or Ctrl-C while it waits) cancels the requests in flight.
        """
        out: queue.SimpleQueue[Any] = queue.SimpleQueue()

        async def main() -> None:
            try:
                await self.produce(
                    iter(tasks), out.put, limiter=self.limiters(limit), budget=budget
                )
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
                out.put(_Crash(exc))
            finally:
                out.put(_END)

        future = asyncio.run_coroutine_threadsafe(main(), shared_loop())
        try:
            yield from drain(out, max_batch)
        finally:
            if not future.done():
                future.cancel()
                concurrent.futures.wait([future], timeout=_CANCEL_GRACE)


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


# -- a queue a producer thread fills and a consumer drains ------------------------------------


class _Crash:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


def crash(exc: BaseException) -> Any:
    """The item a producer puts into a :func:`drain` queue to raise ``exc`` in the consumer."""
    return _Crash(exc)


#: The item a producer puts into a :func:`drain` queue when it is done.
END = _END


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
    """Yield what producers put into ``out``, as :func:`take_available` lists, until :data:`END`.

    A producer's :func:`crash` item is raised here, in the consumer's thread.
    """
    finished = False
    while not finished:
        items: list[Any] = []
        for item in take_available(out, max_batch):
            if item is _END:
                finished = True
            elif isinstance(item, _Crash):
                raise item.exc
            else:
                items.append(item)
        if items:
            yield items
