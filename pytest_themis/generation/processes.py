"""Run generation in worker processes so provider-client CPU uses every core.

litellm spends several milliseconds of CPU per call; at high concurrency one Python process is
CPU-bound long before the provider is. The parent streams task batches to workers of the pool
(:mod:`.pool`; their side is :mod:`._worker`), each running a
:class:`~.kernel.GenerationKernel`, and keeps everything
stateful itself: the cache, scoring, the cost budget and the order records are persisted in.
A worker that dies has its unanswered tasks handed to the others, or run in this process when
none is left: every task yields exactly one record.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from ..core.defaults import AUTO_PARALLEL_CEILING
from ..core.entities import GenerationRecord, GenerationTask
from ._worker import (
    RateLimited,
    Ready,
    RecordDone,
    StartRun,
    TaskBatch,
    TaskFeed,
    WorkerGone,
)
from .kernel import GenerationKernel
from .pool import PoolWorker, pool_size, return_workers, take_workers
from .retry import AimdWindow
from .settings import Budget
from .streams import END, crash, drain, shared_loop, take_available

__all__ = ["ProcessStrategy"]

_SEND_BATCH = 32
#: What the hand-out thread puts into its output queue when asked to stop.
_STOP = object()


class _LocalWorker:
    """This process's own share, on the shared event loop: busy from the first moment."""

    alive = True

    def __init__(
        self,
        kernel: GenerationKernel,
        cap: int,
        out: queue.SimpleQueue[Any],
        limit: int | None,
        report_rate_limits: bool,
    ) -> None:
        self.cap = 0
        self.window = cap
        self.outstanding: dict[int, GenerationTask] = {}
        self._loop = shared_loop()
        self._feed = feed = TaskFeed()

        def emit(record: GenerationRecord) -> None:
            out.put((self, feed.message(record)))

        async def main() -> None:
            await kernel.produce(
                feed.tasks(),
                emit,
                limiter=kernel.limiters(limit),
                on_rate_limit=(lambda: out.put((self, RateLimited())))
                if report_rate_limits
                else None,
            )

        self._future = asyncio.run_coroutine_threadsafe(main(), self._loop)

    @property
    def room(self) -> int:
        return self.window - len(self.outstanding)

    def send(self, batch: list[tuple[int, GenerationTask]]) -> None:
        self.outstanding.update(batch)
        self._loop.call_soon_threadsafe(self._feed.inbox.put_nowait, TaskBatch(batch))

    def finish(self) -> None:
        if not self._future.done():
            self._loop.call_soon_threadsafe(self._feed.inbox.put_nowait, None)

    def kill(self) -> None:
        self._future.cancel()

    def stop(self) -> None:
        self.finish()
        if not self._future.cancelled():
            try:
                self._future.result()
            except concurrent.futures.CancelledError:
                pass


class ProcessStrategy:
    """Stream tasks through this process plus worker processes; yield finished records.

    This process starts sending at once with the whole concurrency budget; each worker process
    takes an equal share of it as soon as it reports ready, so a worker's start-up (the
    litellm import) never delays the first requests. With a prestarted pool only the pool's
    workers send (this process stays free of the client library) unless they all die.
    """

    def __init__(self, kernel: GenerationKernel, budget: Budget, processes: int) -> None:
        self.kernel = kernel
        self.budget = budget
        self.processes = processes
        #: Records produced by worker processes (not this one) in the last run.
        self.records_from_workers = 0

    def run(self, tasks: Iterable[GenerationTask], max_batch: int) -> Iterator[list[Any]]:
        """Yield lists of records as they finish.

        Tasks are handed out on a thread of their own, so a freed slot is refilled at once,
        however long the caller spends on a batch (writing it to the cache, scoring it).
        """
        results: queue.SimpleQueue[Any] = queue.SimpleQueue()
        out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        stop = threading.Event()
        dispatcher = _Dispatcher(self, iter(tasks), out, stop)

        def hand_out() -> None:
            try:
                for batch in dispatcher.loop(max_batch):
                    results.put(batch)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
                results.put(crash(exc))
            finally:
                results.put(END)

        thread = threading.Thread(target=hand_out, name="themis-dispatch", daemon=True)
        thread.start()
        try:
            for batches in drain(results, max_batch):
                yield [record for batch in batches for record in batch]
        finally:
            stop.set()
            out.put((None, _STOP))  # wakes the dispatcher if it is waiting for worker output
            thread.join()


class _Dispatcher:
    """The hand-out loop of one :meth:`ProcessStrategy.run`."""

    def __init__(
        self,
        strategy: ProcessStrategy,
        source: Iterator[GenerationTask],
        out: queue.SimpleQueue[Any],
        stop: threading.Event,
    ) -> None:
        self.strategy = strategy
        self.kernel = strategy.kernel
        self.budget = strategy.budget
        self.source = source
        self.out = out
        self.stop = stop
        settings = self.kernel.settings
        self.auto = settings.adaptive
        self.total = AUTO_PARALLEL_CEILING if self.auto else int(settings.max_parallel)
        # With "auto" one AIMD window here spans every process (a controller per process would
        # overshoot together); workers get a large fixed limit and report each 429.
        self.window = AimdWindow(maximum=AUTO_PARALLEL_CEILING) if self.auto else None
        self.requeued: deque[tuple[int, GenerationTask]] = deque()
        self.exhausted = False
        self.next_index = 0
        self.local: _LocalWorker | None = None
        self.remote: list[PoolWorker] = []
        self.workers: list[Any] = []

    # -- workers ------------------------------------------------------------------------------

    def _start(self) -> None:
        pooled = pool_size()
        processes = self.strategy.processes
        if pooled:
            self.remote = take_workers(min(max(pooled, processes), self.total))
        else:
            self.remote = take_workers(min(processes, self.total) - 1)
            self._start_local()
        count = len(self.remote)
        # Shares add up to exactly ``total``: never more requests in flight than asked for.
        shares = [self.total // count + (i < self.total % count) for i in range(count)]
        settings = self.kernel.settings
        for worker, share in zip(self.remote, shares, strict=True):
            limit = self.total if self.auto else share
            start = StartRun(settings, limit, report_rate_limits=self.auto)
            worker.begin(start, share, self.out)
        self.workers.extend(self.remote)

    def _start_local(self) -> None:
        limit = AUTO_PARALLEL_CEILING if self.auto else None
        self.local = _LocalWorker(self.kernel, self.total, self.out, limit, self.auto)
        self.workers.insert(0, self.local)

    def _alive(self) -> list[Any]:
        return [w for w in self.workers if w.alive]

    def _size_windows(self) -> None:
        if self.window is not None:
            ready = [w for w in self._alive() if w is self.local or w.is_ready.is_set()]
            limit = int(self.window.limit)
            for worker in self.workers:
                worker.window = 0
            for i, worker in enumerate(ready):
                worker.window = limit // len(ready) + (i < limit % len(ready))
        elif self.local is not None:
            busy = sum(w.cap for w in self.remote if w.window and w.alive)
            self.local.window = self.total - busy

    # -- tasks --------------------------------------------------------------------------------

    def _next(self) -> tuple[int, GenerationTask] | None:
        if self.requeued:
            return self.requeued.popleft()
        if self.exhausted:
            return None
        task = next(self.source, None)
        if task is None:
            self.exhausted = True
            return None
        self.next_index += 1
        return self.next_index - 1, task

    def _fill(self, worker: Any, ready: list[GenerationRecord]) -> None:
        batch: list[tuple[int, GenerationTask]] = []
        while worker.room - len(batch) > 0:
            item = self._next()
            if item is None:
                break
            if self.budget.exhausted:
                ready.append(self.budget.record(item[1]))
                continue
            batch.append(item)
            if len(batch) >= _SEND_BATCH:
                worker.send(batch)
                batch = []
        if batch:
            worker.send(batch)

    @property
    def _outstanding(self) -> int:
        return sum(len(w.outstanding) for w in self.workers)

    def _done(self) -> bool:
        return self.exhausted and not self.requeued and not self._outstanding

    # -- messages -----------------------------------------------------------------------------

    def _handle(self, worker: Any, message: Any, ready: list[GenerationRecord]) -> bool:
        """Act on one message; False when asked to stop."""
        if message is _STOP and worker is None:
            return False
        if isinstance(message, Ready):
            worker.ready()
        elif isinstance(message, RateLimited):
            if self.window is not None:
                self.window.on_rate_limit(self._outstanding)
        elif isinstance(message, WorkerGone):
            self._lost(worker)
        elif isinstance(message, RecordDone):
            record = message.to_record(worker.outstanding.pop(message.index))
            self.budget.charge(record.cost)
            if self.window is not None and record.error is None:
                self.window.on_success()
            if worker is not self.local:
                self.strategy.records_from_workers += 1
            ready.append(record)
        return True

    def _lost(self, worker: PoolWorker) -> None:
        """A worker died: its unanswered tasks go back to the queue (to others, or here)."""
        self.requeued.extend(sorted(worker.outstanding.items()))
        worker.outstanding = {}
        worker.window = 0
        if self.local is None and not self._alive():
            self._start_local()

    def loop(self, max_batch: int) -> Iterator[list[GenerationRecord]]:
        self._start()
        try:
            while not self.stop.is_set():
                ready: list[GenerationRecord] = []
                self._size_windows()
                for worker in self._alive():
                    self._fill(worker, ready)
                if ready:
                    yield ready
                    continue
                if self._done():
                    return
                for worker, message in take_available(self.out, max_batch):
                    if not self._handle(worker, message, ready):
                        return
                if ready:
                    yield ready
        finally:
            self._close(aborted=not self._done())

    def _close(self, aborted: bool) -> None:
        """End the run; stopped early (Ctrl-C, closed iterator), cancel what is in flight."""
        for worker in self.workers:
            if aborted:
                worker.kill()  # a worker process is replaced later; ours cancels its requests
            else:
                worker.finish()
        for worker in self.workers:
            worker.stop()
        return_workers(self.remote)
