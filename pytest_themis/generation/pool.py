"""The pool of generation worker processes: started (or prestarted) once, reused by runs.

One host process imports the provider client library and forks its siblings (see
:mod:`._worker`); :class:`PoolWorker` is this process's end of one of them. Runs take workers
with :func:`take_workers` and give the live ones back with :func:`return_workers`
(:mod:`.processes` dispatches a run over them); :func:`prestart` fills the pool ahead of the
first run and :func:`shutdown_pool` empties it (also at interpreter exit).
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
from typing import Any

from ..core.entities import GenerationTask
from ..core.process_host import Channel, ChildProcess
from ._worker import EndRun, Ready, RunDone, StartRun, TaskBatch, WorkerGone

__all__ = [
    "PoolWorker",
    "default_processes",
    "light_task",
    "pool_pids",
    "pool_size",
    "prestart",
    "return_workers",
    "shutdown_pool",
    "spawn",
    "take_workers",
]


class PoolWorker:
    """A pooled worker process; it serves one run at a time and survives between runs.

    It takes tasks only after it has said it is ready (its litellm import is done), so a cold
    worker never holds requests back.
    """

    def __init__(self, host: ChildProcess, channel: Channel) -> None:
        self.cap = 0
        self.window = 0
        self.outstanding: dict[int, GenerationTask] = {}
        self.is_ready = threading.Event()
        #: The worker's own process id, known once it is ready (workers are forked siblings).
        self.pid: int | None = None
        self._run_done = threading.Event()
        self._eof = False
        self._out: queue.SimpleQueue[Any] | None = None
        self.host = host
        self.channel = channel
        threading.Thread(target=self._read, name="themis-worker-reader", daemon=True).start()

    def _read(self) -> None:
        while True:
            message = self.channel.recv()
            if message is None:
                self._eof = True
                self.host.release(self.channel)  # the last of its siblings to go reaps the host
                message = WorkerGone()
            if isinstance(message, Ready):
                self.pid = message.pid
                self.is_ready.set()
            elif isinstance(message, RunDone):
                self._run_done.set()
                continue
            out = self._out
            if out is not None:
                out.put((self, message))
            if isinstance(message, WorkerGone):
                self._run_done.set()
                return

    @property
    def alive(self) -> bool:
        return not self._eof  # a worker's output ends only when it exits

    def begin(self, start: StartRun, cap: int, out: queue.SimpleQueue[Any]) -> None:
        self.cap = cap
        self.outstanding = {}
        self._out = out
        self._run_done.clear()
        try:
            self.channel.send(start)
        except OSError:  # died in the pool; its reader reports it
            return
        if self.is_ready.is_set():
            self.ready()

    def ready(self) -> None:
        self.window = self.cap + max(4, self.cap // 2)

    @property
    def room(self) -> int:
        return self.window - len(self.outstanding)

    def send(self, batch: list[tuple[int, GenerationTask]]) -> None:
        self.outstanding.update(batch)
        try:
            self.channel.send(TaskBatch([(i, light_task(t)) for i, t in batch]))
        except OSError:  # the worker is gone; its reader reports it
            pass

    def finish(self) -> None:
        """End the current run (the worker answers :class:`RunDone` when its last is out)."""
        try:
            self.channel.send(EndRun())
        except OSError:  # the worker is gone
            pass

    def stop(self) -> None:
        """Wait for the run to end, then detach; a worker that does not end is killed."""
        if not self._run_done.wait(timeout=30):
            self.kill()
        self._out = None
        self.window = 0

    def kill(self) -> None:
        """Hang up (a worker exits at the end of its input) and, failing that, end it.

        A worker still importing its client library (not ready: a session that needed no
        request, e.g. a fully cached rerun) is ended at once instead of being waited for; no
        sibling is forked yet, so that ends its whole host.
        """
        self._eof = True
        self.channel.close_send()
        if not self.is_ready.is_set():
            self.host.kill_group()
        elif not self._run_done.wait(timeout=2) and self.pid is not None:
            self.host.kill_member(self.pid)
        self.host.release(self.channel)


def spawn(count: int) -> list[PoolWorker]:
    """Start ``count`` workers for the price of one import.

    One process imports litellm and then forks the others (it is single-threaded at that
    point, so forking is safe); each worker has its own channel.
    """
    if count <= 0:
        return []
    host = ChildProcess(f"{__package__}._worker:main", channels=count)
    return [PoolWorker(host, channel) for channel in host.channels]


_POOL: list[PoolWorker] = []
_POOL_LOCK = threading.Lock()


#: Workers promised by ``prestart(..., deferred=True)`` and not started yet.
_DEFERRED = 0


def prestart(count: int, *, deferred: bool = False) -> None:
    """Give runs a pool of ``count`` worker processes; they then use only these workers (this
    process never imports litellm).

    Started now, their imports overlap with other start-up work. ``deferred=True`` starts them
    only when the first run has a request to send, so a session that sends none (a fully
    cached rerun) starts no process and pays for no import.
    """
    global _DEFERRED
    with _POOL_LOCK:
        _POOL[:] = [w for w in _POOL if w.alive]
        if deferred:
            _DEFERRED = max(_DEFERRED, count - len(_POOL))
            return
        _POOL.extend(spawn(count - len(_POOL)))


def take_workers(count: int) -> list[PoolWorker]:
    """``count`` workers: pooled ones first, then freshly spawned."""
    global _DEFERRED
    with _POOL_LOCK:
        _POOL[:] = [w for w in _POOL if w.alive]
        taken = _POOL[:count]
        del _POOL[:count]
        _DEFERRED = 0
    return taken + spawn(count - len(taken))


def return_workers(workers: list[PoolWorker]) -> None:
    with _POOL_LOCK:
        _POOL.extend(w for w in workers if w.alive)


@atexit.register
def shutdown_pool() -> None:
    """Stop the prestarted workers (also run at interpreter exit)."""
    global _DEFERRED
    with _POOL_LOCK:
        workers = list(_POOL)
        _POOL.clear()
        _DEFERRED = 0
    for worker in workers:
        worker.kill()


def pool_size() -> int:
    """Live workers waiting in the prestarted pool (deferred ones included)."""
    with _POOL_LOCK:
        return sum(1 for w in _POOL if w.alive) + _DEFERRED


def pool_pids() -> list[int]:
    """Process ids of the ready workers waiting in the prestarted pool."""
    with _POOL_LOCK:
        return [w.pid for w in _POOL if w.alive and w.pid is not None]


def default_processes() -> int:
    """Process count for ``processes="auto"`` (this one included): one per core, at most four."""
    return max(1, min(4, os.cpu_count() or 1))


def light_task(task: GenerationTask) -> GenerationTask:
    """The task without its dataset row (workers only need the request)."""
    return GenerationTask(task.cell, task.row_id, task.sample_index, task.messages)
