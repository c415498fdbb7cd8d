"""Generation worker processes: spread provider-client CPU over several cores.

Workers are hosted by a :class:`~pytest_themis.core.process_host.ChildProcess` running
:func:`main`; each reads task batches from its channel and answers one message per finished
record, running a :class:`~.kernel.GenerationKernel` (retries, Retry-After, limits) on its own
event loop. The parent keeps the cache, scoring and budget. Messages are the small dataclasses
below, sent over the channel between a parent and the children it started.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ..core.entities import GenerationRecord, GenerationTask
from ..core.process_host import Channel, exit_if_orphaned, fork_per_channel
from ..core.records import record_from_dict, record_to_dict
from .settings import RunSettings

__all__ = [
    "EndRun",
    "RateLimited",
    "Ready",
    "RecordDone",
    "RunDone",
    "StartRun",
    "TaskBatch",
    "TaskFeed",
    "WorkerGone",
    "main",
]


# -- parent → worker ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StartRun:
    """Begin a run: a kernel with ``settings`` and the default executor for their ``client``;
    ``limit`` caps its concurrency.

    With ``report_rate_limits`` the worker sends :class:`RateLimited` on every 429 (the parent
    keeps a window spanning every process).
    """

    settings: RunSettings
    limit: int | None = None
    report_rate_limits: bool = False


@dataclass(frozen=True)
class TaskBatch:
    """Tasks to run, each with the parent's index for it."""

    items: list[tuple[int, GenerationTask]]


@dataclass(frozen=True)
class EndRun:
    """No more tasks for this run; the worker answers :class:`RunDone` when its last is out."""


# -- worker → parent ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    """The worker (process ``pid``) finished its imports and takes tasks."""

    pid: int


@dataclass(frozen=True)
class RecordDone:
    """A finished record without its task (the parent still has it), in the one record form
    of :mod:`pytest_themis.core.records`."""

    index: int
    fields: dict[str, Any]

    @classmethod
    def of(cls, index: int, record: GenerationRecord) -> RecordDone:
        return cls(index, record_to_dict(record))

    def to_record(self, task: GenerationTask) -> GenerationRecord:
        record = record_from_dict(task, self.fields)
        if record is None:
            raise ValueError(f"worker sent a record with neither text nor error: {self.fields!r}")
        return record


@dataclass(frozen=True)
class RateLimited:
    """The provider answered 429 (sent only when the run asked for it)."""


@dataclass(frozen=True)
class RunDone:
    """The run's last record has been sent."""


@dataclass(frozen=True)
class WorkerGone:
    """Not sent by a worker: what the parent's reader reports when a worker's output ends."""


WorkerMessage = Ready | RecordDone | RateLimited | RunDone | WorkerGone


class TaskFeed:
    """``(index, task)`` batches in, tasks out to a kernel; records map back to their index."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[TaskBatch | None] = asyncio.Queue()
        self._index_of: dict[int, int] = {}

    async def tasks(self) -> AsyncIterator[GenerationTask]:
        while True:
            batch = await self.inbox.get()
            if batch is None:
                return
            for index, task in batch.items:
                self._index_of[id(task)] = index
                yield task

    def message(self, record: GenerationRecord) -> RecordDone:
        return RecordDone.of(self._index_of.pop(id(record.task)), record)


def main(channels: list[Channel]) -> int:
    """Import litellm once, fork one worker per channel, serve until the input ends.

    The entry of the :class:`~pytest_themis.core.process_host.ChildProcess` that hosts workers.
    """
    # A private name of the provider module (its owner keeps it private; one call site).
    from ..providers.litellm_provider import import_litellm

    with exit_if_orphaned():  # the import takes seconds; a parent killed meanwhile ends us
        litellm = import_litellm()  # pay the import once, before forking and saying ready
    # This process is ours alone, so its litellm may stay quiet: no banner per retried error.
    litellm.suppress_debug_info = True  # type: ignore[attr-defined]
    return serve(fork_per_channel(channels))


def serve(channel: Channel) -> int:
    """Serve runs until input ends: :class:`StartRun`, :class:`TaskBatch` es, :class:`EndRun`."""
    send = channel.send

    from .kernel import GenerationKernel
    from .router import ProviderRouter, default_executor

    send(Ready(os.getpid()))
    loop = asyncio.new_event_loop()
    routers: dict[str | None, ProviderRouter] = {}  # one per client choice, kept across runs
    try:
        while True:
            start = channel.recv()
            if not isinstance(start, StartRun):
                return 0
            client = start.settings.client
            router = routers.get(client)
            if router is None:
                router = routers[client] = ProviderRouter(client=client)
            kernel = GenerationKernel(default_executor(router=router), start.settings)
            feed = TaskFeed()

            def pump(feed: TaskFeed = feed) -> None:
                while True:
                    message = channel.recv()
                    if message is None:
                        # The parent is gone (killed?): stop at once, send nothing more.
                        os._exit(0)
                    batch = message if isinstance(message, TaskBatch) else None
                    loop.call_soon_threadsafe(feed.inbox.put_nowait, batch)
                    if batch is None:
                        return

            def emit(record: GenerationRecord, feed: TaskFeed = feed) -> None:
                send(feed.message(record))

            reader = threading.Thread(target=pump, name="themis-worker-inbox", daemon=True)
            reader.start()
            loop.run_until_complete(
                kernel.produce(
                    feed.tasks(),
                    emit,
                    limiter=kernel.limiters(start.limit),
                    on_rate_limit=(lambda: send(RateLimited()))
                    if start.report_rate_limits
                    else None,
                )
            )
            reader.join()
            send(RunDone())
    finally:
        for router in routers.values():
            router.close()  # connection pools of the native client, on this (idle) loop
        channel.close()
