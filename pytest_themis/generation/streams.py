"""The process's shared event loop, and the queue hand-off from producer threads to a consumer."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["END", "crash", "drain", "shared_loop", "take_available"]

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
