"""Entry points for child processes started by ``tests/engine/test_process_host.py``.

Each is ``target(channels, *args)`` as :class:`pytest_themis.core.process_host.ChildProcess`
calls it in the child interpreter.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from pytest_themis.core.process_host import Channel, exit_if_orphaned, fork_per_channel


def echo(channels: list[Channel], code: str = "0") -> int:
    """Say ready, answer every message with itself until the input ends, exit with ``code``."""
    print("a stray print from a library")  # must reach stderr, not the channel
    (channel,) = channels
    channel.send(("ready", os.getpid()))
    while (message := channel.recv()) is not None:
        channel.send(message)
    return int(code)


def slow_import(channels: list[Channel]) -> int:
    """Say ready, then stand for an import that never ends (nothing reads the input)."""
    with exit_if_orphaned(every=0.05):
        channels[0].send(("ready", os.getpid()))
        time.sleep(600)
    return 0


def deaf(channels: list[Channel]) -> None:
    """Fork a grandchild, report both pids, then neither reads nor answers, not even at EOF."""
    grandchild = os.fork()
    if grandchild == 0:
        while True:
            signal.pause()
    channels[0].send(("pids", os.getpid(), grandchild))
    while True:
        signal.pause()


def siblings(channels: list[Channel]) -> int:
    """One forked process per channel; each says its pid, then echoes with its pid."""
    mine = fork_per_channel(channels)
    mine.send(os.getpid())
    while (message := mine.recv()) is not None:
        mine.send((os.getpid(), message))
    return 0


def broken(channels: list[Channel]) -> None:
    """Fail before saying ready."""
    raise RuntimeError("broken on purpose")


def mark_then_sleep(mark: str) -> None:
    """A sandbox handler busy for two minutes, after creating the file ``mark``."""
    Path(mark).touch()
    time.sleep(120)


def mark_then_hold_the_gil(mark: str) -> object:
    """A sandbox handler that never lets another thread of its process run, after creating the
    file ``mark``: a backtracking regex (the ``re`` engine keeps the GIL) of about 2**64 steps."""
    import re

    Path(mark).touch()
    return re.match(r"(a+)+$", "a" * 64 + "b")
