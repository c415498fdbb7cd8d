"""Generation worker processes: spread provider-client CPU over several cores.

A worker is ``python -m pytest_themis.generation._worker``; it reads task batches from stdin and
writes one frame per finished record to stdout, running an ordinary :class:`GenerationRunner`
(async path, retries, Retry-After, adaptive limits) on its own event loop. The parent keeps the
cache, scoring and budget. Frames are length-prefixed pickles on private pipes between a parent
and the children it started; nothing else reads or writes them.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import struct
import sys
import threading
from collections.abc import AsyncIterator
from typing import IO, Any

__all__ = ["EOF", "TaskFeed", "read_frame", "record_payload", "write_frame"]

_HEADER = struct.Struct("!I")


def write_frame(stream: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


#: What :func:`read_frame` returns when the other side has gone (as opposed to a None frame).
EOF = object()


def read_frame(stream: IO[bytes]) -> Any:
    """The next object, or :data:`EOF` at end of stream."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return EOF
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return EOF
    return pickle.loads(data)


def record_payload(index: int, record: Any) -> tuple[Any, ...]:
    """A finished record without its task (the parent still has it)."""
    usage = record.usage
    error = record.error
    return (
        index,
        record.text,
        (usage.prompt_tokens, usage.completion_tokens) if usage is not None else None,
        record.cost,
        record.latency,
        record.finish_reason,
        (error.kind, error.type, error.message, error.status_code) if error is not None else None,
        record.attempts,
    )


class TaskFeed:
    """``(index, task)`` batches in, tasks out to a runner; records map back to their index."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self._index_of: dict[int, int] = {}

    async def tasks(self) -> AsyncIterator[Any]:
        while True:
            batch = await self.inbox.get()
            if batch is None:
                return
            for index, task in batch:
                self._index_of[id(task)] = index
                yield task

    def payload(self, record: Any) -> tuple[Any, ...]:
        return record_payload(self._index_of.pop(id(record.task)), record)


def main(argv: list[str]) -> int:
    """Import litellm once, fork one worker per pipe pair in ``argv[0]``, serve until EOF.

    ``argv[0]`` lists file descriptors ``in0,out0,in1,out1,…`` opened by the parent.
    """
    os.dup2(2, 1)  # anything a client library prints goes to stderr, never into our frames
    sys.stdout = sys.stderr
    fds = [int(fd) for fd in argv[0].split(",")]
    pairs = list(zip(fds[0::2], fds[1::2], strict=True))
    from ..providers.litellm_provider import _import_litellm

    litellm = _import_litellm()  # pay the import once, before forking and saying we are ready
    # This process is ours alone, so its litellm may stay quiet: no banner per retried error.
    litellm.suppress_debug_info = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # forked siblings are reaped automatically
    mine = pairs[0]
    for pair in pairs[1:]:
        if os.fork() == 0:
            mine = pair
            break
    for pair in pairs:
        if pair != mine:
            os.close(pair[0])
            os.close(pair[1])
    return serve(os.fdopen(mine[0], "rb"), os.fdopen(mine[1], "wb"))


def serve(frames_in: IO[bytes], frames_out: IO[bytes]) -> int:
    """Serve runs until input ends: ``("run", config)``, task batches, ``None`` ends a run."""
    write_lock = threading.Lock()

    def send(obj: Any) -> None:
        with write_lock:
            write_frame(frames_out, obj)

    from .router import ProviderRouter
    from .runner import GenerationRunner

    send("ready")
    loop = asyncio.new_event_loop()
    try:
        while True:
            message = read_frame(frames_in)
            if not isinstance(message, tuple) or message[0] != "run":
                return 0
            config = dict(message[1])
            limit = config.pop("limit", None)
            router = ProviderRouter(client=config.pop("client", None))
            runner = GenerationRunner(router, processes=1, **config)
            if limit is not None:  # the parent sizes our window and wants to hear of 429s
                runner.rate_limit_listener = lambda: send("rate_limited")
            feed = TaskFeed()

            def pump(feed: TaskFeed = feed) -> None:
                while True:
                    batch = read_frame(frames_in)
                    if batch is EOF:
                        # The parent is gone (killed?): stop at once, send nothing more.
                        os._exit(0)
                    loop.call_soon_threadsafe(feed.inbox.put_nowait, batch)
                    if batch is None:
                        return

            class Sink:
                def put(self, record: Any, feed: TaskFeed = feed) -> None:
                    send(feed.payload(record))

            reader = threading.Thread(target=pump, name="themis-worker-inbox", daemon=True)
            reader.start()
            loop.run_until_complete(
                runner._produce(feed.tasks(), Sink(), threading.Event(), limit=limit)
            )
            reader.join()
            runner.close()  # the run's connection pools (bound to this loop) end with it
            send("done")
    finally:
        frames_out.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
