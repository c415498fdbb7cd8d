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

from ..core.entities import GenerationError, GenerationRecord, GenerationTask, TokenUsage
from ..core.process_host import Channel, exit_if_orphaned, fork_per_channel
from .kernel import RunSettings

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
    """Begin a run: a kernel with ``settings``; ``limit`` caps its concurrency.

    With ``report_rate_limits`` the worker sends :class:`RateLimited` on every 429 (the parent
    keeps a window spanning every process).
    """

    settings: RunSettings
    limit: int | None = None
    report_rate_limits: bool = False
    #: The parent router's HTTP client choice for litellm models (``auto``/``litellm``/``native``).
    client: str | None = None


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
    """A finished record without its task (the parent still has it)."""

    index: int
    text: str | None
    usage: tuple[int, int] | None
    cost: float | None
    latency: float
    finish_reason: str | None
    error: tuple[str, str, str, int | None] | None
    attempts: int

    @classmethod
    def of(cls, index: int, record: GenerationRecord) -> RecordDone:
        usage, error = record.usage, record.error
        return cls(
            index,
            record.text,
            (usage.prompt_tokens, usage.completion_tokens) if usage is not None else None,
            record.cost,
            record.latency,
            record.finish_reason,
            (error.kind, error.type, error.message, error.status_code) if error else None,
            record.attempts,
        )

    def to_record(self, task: GenerationTask) -> GenerationRecord:
        return GenerationRecord(
            task=task,
            text=self.text,
            usage=TokenUsage(*self.usage) if self.usage is not None else None,
            cost=self.cost,
            latency=self.latency,
            finish_reason=self.finish_reason,
            error=GenerationError(*self.error) if self.error is not None else None,
            attempts=self.attempts,
        )


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
    from .router import ProviderRouter

    send(Ready(os.getpid()))
    loop = asyncio.new_event_loop()
    routers: dict[str | None, ProviderRouter] = {}  # one per client choice, kept across runs
    try:
        while True:
            start = channel.recv()
            if not isinstance(start, StartRun):
                return 0
            router = routers.get(start.client)
            if router is None:
                router = routers[start.client] = ProviderRouter(client=start.client)
            kernel = GenerationKernel(router, start.settings)
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
