"""Run generation in worker processes so provider-client CPU uses every core.

litellm spends several milliseconds of CPU per call; at high concurrency one Python process is
CPU-bound long before the provider is. The parent streams task batches to workers (see
:mod:`._worker`), each running the ordinary async runner, and keeps everything stateful itself:
the cache, scoring, the cost budget and the order records are persisted in.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..core.entities import GenerationError, GenerationRecord, GenerationTask, TokenUsage
from ._worker import EOF, TaskFeed, read_frame, write_frame
from .retry import AimdWindow
from .runner import _DONE, _Crash, _shared_loop, drain, take_available

if TYPE_CHECKING:
    from .runner import GenerationRunner

__all__ = ["default_processes", "pool_size", "prestart", "run_in_processes", "shutdown_pool"]

_SEND_BATCH = 32
#: Upper bound of an adaptive (``max_parallel="auto"``) window across all processes.
_AUTO_CEILING = 256


class _Worker:
    """A pooled worker process; it serves one run at a time and survives between runs.

    It takes tasks only after it has said it is ready (its litellm import is done), so a cold
    worker never holds requests back.
    """

    def __init__(self, to_worker: int, from_worker: int, proc: subprocess.Popen[bytes]) -> None:
        self.cap = 0
        self.window = 0
        self.outstanding: set[int] = set()
        self.is_ready = threading.Event()
        self._run_done = threading.Event()
        self._eof = False
        self._out: queue.SimpleQueue[Any] | None = None
        self.proc = proc
        self._stdin = os.fdopen(to_worker, "wb")
        stdout = os.fdopen(from_worker, "rb")

        def read() -> None:
            while True:
                payload = read_frame(stdout)
                if payload is EOF:
                    self._eof = True
                    payload = None
                if payload == "ready":
                    self.is_ready.set()
                elif payload == "done":
                    self._run_done.set()
                    continue
                out = self._out
                if out is not None:
                    out.put((self, payload))
                if payload is None:
                    self._run_done.set()
                    return

        threading.Thread(target=read, name="themis-worker-reader", daemon=True).start()

    @property
    def alive(self) -> bool:
        return not self._eof  # a worker's output ends only when it exits

    def begin(self, config: dict[str, Any], cap: int, out: queue.SimpleQueue[Any]) -> None:
        self.cap = cap
        self.outstanding = set()
        self._out = out
        self._run_done.clear()
        write_frame(self._stdin, ("run", config))
        if self.is_ready.is_set():
            self.ready()

    def ready(self) -> None:
        self.window = self.cap + max(4, self.cap // 2)

    @property
    def room(self) -> int:
        return self.window - len(self.outstanding)

    def send(self, batch: list[tuple[int, GenerationTask]]) -> None:
        self.outstanding.update(index for index, _ in batch)
        write_frame(self._stdin, [(i, _light(t)) for i, t in batch])

    def finish(self) -> None:
        """End the current run (the worker answers ``done`` when its last record is out)."""
        try:
            write_frame(self._stdin, None)
        except (OSError, ValueError):  # the worker is gone
            pass

    def stop(self) -> None:
        """Wait for the run to end, then detach; a worker that does not end is killed."""
        if not self._run_done.wait(timeout=30):
            self.kill()
        self._out = None
        self.window = 0

    def kill(self) -> None:
        """Close the worker's input (it exits on end of input) and, failing that, end it."""
        try:
            self._stdin.close()
        except OSError:
            pass
        self._eof = True
        if self.proc.poll() is None and not self._run_done.wait(timeout=2):
            self.proc.kill()

    def exit_code(self) -> int | None:
        return self.proc.poll()


def _spawn(count: int) -> list[_Worker]:
    """Start ``count`` workers for the price of one import.

    One process imports litellm and then forks the others (it is single-threaded at that
    point, so forking is safe); each worker gets its own pair of pipes created here.
    """
    if count <= 0:
        return []
    ours: list[tuple[int, int]] = []
    theirs: list[int] = []
    for _ in range(count):
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        ours.append((to_w, from_r))
        theirs += [to_r, from_w]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_themis.generation._worker", ",".join(map(str, theirs))],
        pass_fds=theirs,
    )
    for fd in theirs:
        os.close(fd)
    return [_Worker(to_w, from_r, proc) for to_w, from_r in ours]


_POOL: list[_Worker] = []
_POOL_LOCK = threading.Lock()


def prestart(count: int) -> None:
    """Start ``count`` worker processes now so their imports overlap with other start-up work.

    Runs that follow use only these workers (this process then never imports litellm).
    """
    with _POOL_LOCK:
        _POOL[:] = [w for w in _POOL if w.alive]
        _POOL.extend(_spawn(count - len(_POOL)))


def _take_workers(count: int) -> list[_Worker]:
    """``count`` workers: pooled ones first, then freshly spawned."""
    with _POOL_LOCK:
        _POOL[:] = [w for w in _POOL if w.alive]
        taken = _POOL[:count]
        del _POOL[:count]
    return taken + _spawn(count - len(taken))


def _return_workers(workers: list[_Worker]) -> None:
    with _POOL_LOCK:
        _POOL.extend(w for w in workers if w.alive)


@atexit.register
def shutdown_pool() -> None:
    """Stop the prestarted workers (also run at interpreter exit)."""
    with _POOL_LOCK:
        workers = list(_POOL)
        _POOL.clear()
    for worker in workers:
        worker.kill()


class _LocalWorker:
    """This process's own share, on the shared event loop: busy from the first moment."""

    def __init__(
        self,
        runner: GenerationRunner,
        cap: int,
        out: queue.SimpleQueue[Any],
        limit: int | None = None,
    ) -> None:
        self.window = cap
        self.outstanding: set[int] = set()
        self._loop = _shared_loop()
        self._feed = feed = TaskFeed()
        me = self

        class Sink:
            def put(self, record: GenerationRecord) -> None:
                out.put((me, feed.payload(record)))

        if limit is not None:  # the parent sizes our window and wants to hear of 429s
            runner.rate_limit_listener = lambda: out.put((me, "rate_limited"))

        async def main() -> None:
            try:
                await runner._produce(feed.tasks(), Sink(), threading.Event(), limit=limit)
            finally:
                out.put((me, None))

        self._future = asyncio.run_coroutine_threadsafe(main(), self._loop)

    @property
    def room(self) -> int:
        return self.window - len(self.outstanding)

    def send(self, batch: list[tuple[int, GenerationTask]]) -> None:
        self.outstanding.update(index for index, _ in batch)
        self._loop.call_soon_threadsafe(self._feed.inbox.put_nowait, batch)

    def finish(self) -> None:
        if not self._future.done():
            self._loop.call_soon_threadsafe(self._feed.inbox.put_nowait, None)

    def stop(self) -> None:
        self.finish()
        self._future.result()

    def exit_code(self) -> int | None:
        return None


def _light(task: GenerationTask) -> GenerationTask:
    """The task without its dataset row (workers only need the request)."""
    return GenerationTask(task.cell, task.row_id, task.sample_index, task.messages)


def _record(task: GenerationTask, payload: tuple[Any, ...]) -> GenerationRecord:
    _, text, usage, cost, latency, finish_reason, error, attempts = payload
    return GenerationRecord(
        task=task,
        text=text,
        usage=TokenUsage(*usage) if usage is not None else None,
        cost=cost,
        latency=latency,
        finish_reason=finish_reason,
        error=GenerationError(*error) if error is not None else None,
        attempts=attempts,
    )


def _crashed(task: GenerationTask, code: int | None) -> GenerationRecord:
    return GenerationRecord(
        task=task,
        error=GenerationError(
            "transient",
            "WorkerCrashed",
            f"the generation worker process exited (code {code}) before answering; rerun to retry",
        ),
    )


def run_in_processes(
    runner: GenerationRunner, tasks: Iterable[GenerationTask], processes: int, max_batch: int
) -> Iterator[list[GenerationRecord]]:
    """Stream ``tasks`` through this process plus ``processes - 1`` workers; yield batches.

    This process starts sending at once with the whole concurrency budget; each worker process
    takes an equal share of it as soon as it reports ready, so a worker's start-up (the
    litellm import) never delays the first requests.

    Tasks are handed out on a thread of their own, so a freed slot is refilled at once, however
    long the caller spends on a batch (writing it to the cache, scoring it).
    """
    results: queue.SimpleQueue[Any] = queue.SimpleQueue()
    out: queue.SimpleQueue[Any] = queue.SimpleQueue()
    stop = threading.Event()

    def dispatch() -> None:
        try:
            for batch in _dispatch(runner, tasks, processes, max_batch, out, stop):
                results.put(batch)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            results.put(_Crash(exc))
        finally:
            results.put(_DONE)

    thread = threading.Thread(target=dispatch, name="themis-dispatch", daemon=True)
    thread.start()
    try:
        for batches in drain(results, max_batch):
            yield [record for batch in batches for record in batch]
    finally:
        stop.set()
        out.put((None, _STOP))  # wakes the dispatcher if it is waiting for worker output
        thread.join()


_STOP = "stop"


def _dispatch(
    runner: GenerationRunner,
    tasks: Iterable[GenerationTask],
    processes: int,
    max_batch: int,
    out: queue.SimpleQueue[Any],
    stop: threading.Event,
) -> Iterator[list[GenerationRecord]]:
    """The hand-out loop of :func:`run_in_processes`; ``out`` carries the workers' output."""
    auto = runner.max_parallel == "auto"
    total = _AUTO_CEILING if auto else int(runner.max_parallel)
    # With "auto" one AIMD window here spans every process (a controller per process would
    # overshoot together); workers get a large fixed limit and report each 429.
    window = AimdWindow(maximum=_AUTO_CEILING) if auto else None
    config = {
        "max_retries": runner.max_retries,
        "timeout": runner.timeout,
        "retry_base_delay": runner.retry_policy.base_delay,
        "retry_max_delay": runner.retry_policy.max_delay,
        "client": getattr(runner.executor, "client", None),
    }
    pooled = pool_size()
    if pooled:
        # A prestarted pool: workers only, this process stays free of the client library.
        remote = _take_workers(min(max(pooled, processes), total))
        local = None
    else:
        remote = _take_workers(min(processes, total) - 1)
        local = _LocalWorker(runner, total, out, limit=_AUTO_CEILING if auto else None)
    # Shares add up to exactly ``total``: never more requests in flight than asked for.
    shares = [total // len(remote) + (i < total % len(remote)) for i in range(len(remote))]
    for worker, share in zip(remote, shares, strict=True):
        if auto:
            worker.begin(dict(config, max_parallel=total, limit=total), share, out)
        else:
            worker.begin(dict(config, max_parallel=share), share, out)
    workers: list[Any] = ([local] if local is not None else []) + remote
    alive: set[Any] = set(workers)
    pending: dict[int, GenerationTask] = {}
    source = iter(tasks)
    exhausted = False
    next_index = 0
    try:
        while not stop.is_set():
            ready: list[GenerationRecord] = []
            if window is not None:
                _split_window(int(window.limit), [w for w in workers if w in alive])
            elif local is not None:
                local.window = total - sum(w.cap for w in remote if w.window and w in alive)
            for worker in workers:
                if worker not in alive:
                    continue
                batch: list[tuple[int, GenerationTask]] = []
                while not exhausted and worker.room - len(batch) > 0:
                    try:
                        task = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    if runner._budget_spent():
                        ready.append(runner._budget_record(task))
                        continue
                    pending[next_index] = task
                    batch.append((next_index, task))
                    next_index += 1
                    if len(batch) >= _SEND_BATCH:
                        worker.send(batch)
                        batch = []
                if batch:
                    worker.send(batch)
            if ready:
                yield ready
                continue
            if exhausted and not pending:
                return
            if not alive:
                yield [_crashed(pending.pop(i), None) for i in sorted(pending)]
                return
            for worker, payload in take_available(out, max_batch):
                if payload == _STOP and worker is None:
                    return
                if payload == "ready":
                    worker.ready()
                elif payload == "rate_limited":
                    if window is not None:
                        window.on_rate_limit(sum(len(w.outstanding) for w in workers))
                elif payload is None:
                    alive.discard(worker)
                    code = worker.exit_code()
                    ready.extend(_crashed(pending.pop(i), code) for i in sorted(worker.outstanding))
                    worker.outstanding.clear()
                else:
                    index = payload[0]
                    worker.outstanding.discard(index)
                    record = _record(pending.pop(index), payload)
                    runner._charge(record.cost)
                    if window is not None and record.error is None:
                        window.on_success()
                    if worker is not local:
                        runner.records_from_workers += 1
                    ready.append(record)
            if ready:
                yield ready
    finally:
        runner.rate_limit_listener = None
        for worker in workers:
            worker.finish()
        for worker in workers:
            worker.stop()
        _return_workers(remote)


def _split_window(limit: int, workers: list[Any]) -> None:
    """Share an adaptive window among the workers that are ready to take tasks."""
    ready = [w for w in workers if isinstance(w, _LocalWorker) or w.is_ready.is_set()]
    for worker in workers:
        worker.window = 0
    for i, worker in enumerate(ready):
        worker.window = limit // len(ready) + (i < limit % len(ready))


def pool_size() -> int:
    """Live workers waiting in the prestarted pool."""
    with _POOL_LOCK:
        return sum(1 for w in _POOL if w.alive)


def default_processes() -> int:
    """Process count for ``processes="auto"`` (this one included): one per core, at most four."""
    return max(1, min(4, os.cpu_count() or 1))
