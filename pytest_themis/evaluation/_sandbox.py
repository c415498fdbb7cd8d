"""A pool of persistent worker processes with a real wall-clock timeout per item.

Layout::

    caller process ──pipe── host process (python -c, imports + warms the handler once)
                              ├── worker (forked from the host)
                              └── worker (forked from the host)

The host is a fresh, single-threaded interpreter, so forking it is safe (the reason the
``forkserver`` start method exists) and every worker inherits the handler already imported and
warmed up: starting or replacing a worker takes milliseconds. The host never re-imports the
caller's ``__main__`` (as ``spawn``/``forkserver`` children do), so scripts without an
``if __name__ == "__main__":`` guard are safe.

One stuck item costs one worker, not the pool: the host kills it, forks a replacement and
reports the item as timed out. The host is a :class:`~pytest_themis.core.process_host.ChildProcess`:
it exits when the caller closes the pool or goes away (its input ends), and the caller kills its
whole process group if it ever stops answering. POSIX only.
"""

from __future__ import annotations

import importlib
import math
import multiprocessing
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from ..core.process_host import (
    Channel,
    ChildProcess,
    die_with_parent,
    exit_if_orphaned,
    killed_with_forking_thread,
)

__all__ = ["Outcome", "WorkerPool", "default_size", "host_main"]

_HOST = "the scoring worker host"


@dataclass(frozen=True, slots=True)
class Outcome:
    """Result of one item: ``status`` is ``ok``, ``error``, ``timeout`` or ``crashed``."""

    status: str
    value: Any = None
    message: str = ""


def default_size() -> int:
    """One worker per CPU."""
    return max(1, os.cpu_count() or 2)


# =========================================================================== inside the host


def _worker_loop(
    conn: Connection, handler: Callable[[Any], Any], inherited: Sequence[Channel], host: int
) -> None:
    """Forked worker: answer ``(index, payload)`` requests until the host hangs up."""
    for channel in inherited:  # the host's channel to the caller is none of our business
        channel.close()
    # A worker busy on a long item reads nothing: it must notice a host that died however it
    # died (the host kills its group when its caller goes, but not if it is killed alone, as a
    # Ray worker's children are). The kernel does it even while C code holds the GIL (the host's
    # main thread forked us and lives as long as the host); elsewhere a watch thread does.
    if not killed_with_forking_thread(host):
        die_with_parent(parent=host)
    conn.send(("ready", None, None))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            return
        if request is None:
            return
        index, payload = request
        try:
            reply: tuple[Any, str, Any] = (index, "ok", handler(payload))
        except Exception as exc:  # reported, never fatal for the worker
            reply = (index, "error", f"{type(exc).__name__}: {exc}"[:500])
        try:
            conn.send(reply)
        except (OSError, KeyboardInterrupt):
            return


class _Worker:
    __slots__ = ("process", "conn", "started", "ready")

    def __init__(
        self, ctx: Any, handler: Callable[[Any], Any], inherited: Sequence[Channel]
    ) -> None:
        parent_end, child_end = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=_worker_loop,
            args=(child_end, handler, inherited, os.getpid()),
            daemon=True,
            name="themis-worker",
        )
        self.process.start()
        child_end.close()  # a dead worker then shows up as EOF on our end
        self.conn: Connection = parent_end
        self.started = time.monotonic()
        self.ready = False

    def retire(self, force: bool) -> None:
        if force and self.process.is_alive():
            self.process.kill()
        self.conn.close()
        self.process.join(1.0 if force else 2.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class _Scheduler:
    """Feeds items to workers, enforces the per-item deadline, replaces dead or stuck workers."""

    def __init__(
        self,
        handler: Callable[[Any], Any],
        size: int,
        startup_timeout: float,
        inherited: Sequence[Channel] = (),
    ) -> None:
        self.ctx = multiprocessing.get_context("fork")
        self.inherited = tuple(inherited)
        self.handler = handler
        self.size = size
        self.startup_timeout = startup_timeout
        self.restarts = 0
        self.workers: list[_Worker] = []

    def _spawn(self) -> _Worker:
        worker = _Worker(self.ctx, self.handler, self.inherited)
        self.workers.append(worker)
        return worker

    def _drop(self, worker: _Worker) -> None:
        worker.retire(force=True)
        if worker in self.workers:
            self.workers.remove(worker)

    def _replace(self, worker: _Worker, starting: list[_Worker]) -> None:
        self.restarts += 1
        self._drop(worker)
        starting.append(self._spawn())

    def shutdown(self) -> None:
        for worker in self.workers:
            worker.retire(force=True)
        self.workers.clear()

    def map(self, payloads: list[Any], timeout: float) -> list[Outcome]:
        for worker in [w for w in self.workers if not w.process.is_alive()]:
            self._drop(worker)
        while len(self.workers) < min(self.size, len(payloads)):
            self._spawn()
        results: list[Outcome | None] = [None] * len(payloads)
        pending = deque(range(len(payloads)))
        busy: dict[_Worker, tuple[int, float]] = {}
        idle = [w for w in self.workers if w.ready]
        starting = [w for w in self.workers if not w.ready]

        while pending or busy:
            while idle and pending:
                worker = idle.pop()
                index = pending.popleft()
                try:
                    worker.conn.send((index, payloads[index]))
                except (OSError, ValueError):  # died while idle: replace it, retry the item
                    pending.appendleft(index)
                    self._replace(worker, starting)
                    continue
                busy[worker] = (index, time.monotonic() + timeout)
            watched = {w.conn: w for w in (*busy, *starting)}
            deadlines = [d for _, d in busy.values()]
            deadlines += [w.started + self.startup_timeout for w in starting]
            ready = wait(list(watched), timeout=max(0.0, min(deadlines) - time.monotonic()))
            for conn in ready:
                worker = watched[conn]  # type: ignore[index]
                message: Any
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):
                    message = None
                if worker in starting:
                    starting.remove(worker)
                    if message is None:
                        self._drop(worker)
                        raise RuntimeError(f"a worker died while starting ({self.handler})")
                    worker.ready = True
                    idle.append(worker)
                    continue
                index, _ = busy.pop(worker)
                if message is None:
                    worker.process.join(1.0)  # EOF can arrive just before the exit status
                    code = worker.process.exitcode
                    results[index] = Outcome("crashed", message=f"worker exited (code {code})")
                    self._replace(worker, starting)
                else:
                    _, status, value = message
                    results[index] = (
                        Outcome("ok", value)
                        if status == "ok"
                        else Outcome("error", message=str(value))
                    )
                    idle.append(worker)
            now = time.monotonic()
            for worker, (index, deadline) in list(busy.items()):
                if now >= deadline:
                    del busy[worker]
                    results[index] = Outcome("timeout", message=f"exceeded {timeout:g}s")
                    self._replace(worker, starting)
            for worker in starting:
                if now >= worker.started + self.startup_timeout:
                    raise RuntimeError(f"a worker did not start within {self.startup_timeout:g}s")
        return [r if r is not None else Outcome("crashed", message="lost") for r in results]


def host_main(
    channels: list[Channel], handler_path: str, size: str, startup_timeout: float = 60.0
) -> None:
    """Entry of the host process: import the handler, then serve ``("map", payloads, timeout)``
    requests on its one channel until the input ends."""
    (channel,) = channels
    module_name, _, func_name = handler_path.partition(":")
    with exit_if_orphaned():  # the caller may go away during a slow import
        handler = getattr(importlib.import_module(module_name), func_name)
    # A caller killed while this host waits on a busy worker is noticed here, not by a read:
    # the host and the workers it forked stop together (else they outlive the caller).
    die_with_parent()
    scheduler = _Scheduler(handler, int(size), startup_timeout, channels)
    try:
        channel.send(("ready", None))
        while True:
            request = channel.recv()
            if request is None:
                return
            _, payloads, timeout = request
            try:
                reply: tuple[str, Any] = (
                    "done",
                    (scheduler.map(payloads, timeout), scheduler.restarts),
                )
            except Exception as exc:
                reply = ("failed", f"{type(exc).__name__}: {exc}")
            channel.send(reply)
    except (OSError, KeyboardInterrupt):
        return
    finally:
        scheduler.shutdown()


# =========================================================================== in the caller


def _start_host(handler: str, size: int) -> ChildProcess:
    return ChildProcess(f"{__name__}:host_main", [handler, str(size)])


def _request(host: ChildProcess, payloads: list[Any], timeout: float, deadline: float) -> Any:
    """Send one ``map`` request and wait for its answer until ``deadline``."""
    (channel,) = host.channels
    channel.send(("map", payloads, timeout))
    if not channel.poll(max(0.0, deadline - time.monotonic())):
        raise TimeoutError(f"{_HOST} stopped answering")
    reply = channel.recv()
    if reply is None:
        raise EOFError(f"{_HOST} exited")
    return reply


def _shutdown(hosts: list[ChildProcess]) -> None:
    while hosts:
        hosts.pop().close()


class WorkerPool:
    """Runs ``handler(payload)`` (``"module:function"``) in ``size`` persistent processes.

    Thread-safe: concurrent :meth:`map` calls are serialised. Started lazily on the first
    :meth:`map`; stopped by :meth:`close`, garbage collection or interpreter exit (a
    :func:`weakref.finalize` hook, which also runs at exit).
    """

    def __init__(self, handler: str, size: int, *, startup_timeout: float = 120.0) -> None:
        if ":" not in handler:
            raise ValueError(f"handler must be 'module:function', got {handler!r}")
        self.handler = handler
        self.size = max(1, int(size))
        self.startup_timeout = startup_timeout
        self.restarts = 0
        self._hosts: list[ChildProcess] = []  # zero or one; a list so the finalizer sees updates
        self._lock = threading.Lock()
        self._closed = False
        self._finalizer = weakref.finalize(self, _shutdown, self._hosts)

    @property
    def started(self) -> bool:
        return bool(self._hosts)

    @property
    def host_pid(self) -> int | None:
        return self._hosts[0].pid if self._hosts else None

    def start(self) -> None:
        """Start the host now (instead of on the first :meth:`map`) and wait until it is ready."""
        with self._lock:
            self._host().wait_ready(self.startup_timeout, _HOST)

    def launch(self) -> None:
        """Start the host in the background without waiting; the first :meth:`map` waits."""
        with self._lock:
            self._host()

    def _host(self) -> ChildProcess:
        if self._closed:
            raise RuntimeError("the worker pool was closed; create a new one")
        if self._hosts and not self._hosts[0].alive:
            self._hosts.pop().close(grace=0)
        if not self._hosts:
            self._hosts.append(_start_host(self.handler, self.size))
        return self._hosts[0]

    def map(self, payloads: Sequence[Any], timeout: float) -> list[Outcome]:
        """One :class:`Outcome` per payload, in order; each item gets ``timeout`` seconds."""
        if not payloads:
            return []
        items = list(payloads)
        with self._lock:
            host = self._host()
            host.wait_ready(self.startup_timeout, _HOST)
            rounds = math.ceil(len(items) / self.size)
            deadline = time.monotonic() + rounds * (timeout + 1.0) + self.startup_timeout
            try:
                status, body = _request(host, items, float(timeout), deadline)
            except (OSError, EOFError, TimeoutError) as exc:
                self._hosts.remove(host)
                host.close(grace=0)
                return [Outcome("crashed", message=f"worker host failed: {exc}")] * len(items)
            if status != "done":
                raise RuntimeError(f"the scoring worker host failed: {body}")
            outcomes, restarts = body
            self.restarts = restarts
            return list(outcomes)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            _shutdown(self._hosts)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
