"""The process host shared by the scoring sandbox and the generation workers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_themis.core.process_host import Channel, ChildProcess

TESTS = Path(__file__).resolve().parents[1]
TARGETS = "support.host_targets"
pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (POSIX)")


@pytest.fixture(autouse=True)
def _targets_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Children import their entry points from ``tests/support``."""
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
    )


def _gone(pid: int) -> bool:
    """The process no longer runs (absent, or a zombie nobody reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _wait_gone(pids: list[int], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not all(_gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)  # polling a condition with a deadline, not a fixed wait
    return all(_gone(pid) for pid in pids)


# --------------------------------------------------------------------------- channel


def _pair() -> tuple[Channel, Channel]:
    """Two channels wired to each other (``a`` sends to ``b`` and back)."""
    a_to_b = os.pipe()
    b_to_a = os.pipe()
    return Channel(b_to_a[0], a_to_b[1]), Channel(a_to_b[0], b_to_a[1])


def test_channel_carries_messages_in_order_and_ends_with_none() -> None:
    a, b = _pair()
    big = os.urandom(1 << 20)  # larger than a pipe buffer: written while the other side reads
    sender = threading.Thread(target=lambda: [a.send(m) for m in ({"n": 1}, big, [2, 3])])
    sender.start()
    assert [b.recv(), b.recv(), b.recv()] == [{"n": 1}, big, [2, 3]]
    sender.join()
    assert not b.poll(0.01)
    a.send("x")
    assert b.poll(1.0) and b.recv() == "x"
    a.close_send()
    assert a.send_closed and b.poll(1.0) and b.recv() is None and b.recv() is None
    with pytest.raises(BrokenPipeError):  # this end has hung up
        a.send("after hanging up")
    b.close()
    with pytest.raises(BrokenPipeError):  # closed for sending too
        b.send("to nobody")
    a.close()
    assert a.fds() == b.fds() == ()


def test_channel_reads_many_small_messages_from_one_read() -> None:
    a, b = _pair()
    for n in range(1000):  # about 12 kB: all in the pipe before the first read
        a.send(n)
    a.close()
    assert [b.recv() for _ in range(1000)] == list(range(1000)) and b.recv() is None


def test_sending_to_a_closed_reader_fails() -> None:
    a, b = _pair()
    b.close()
    with pytest.raises(BrokenPipeError):
        a.send("to nobody")
    a.close()


def test_closing_a_channel_while_another_thread_reads_it_defers_to_that_read() -> None:
    a, b = _pair()
    got: list[object] = []
    reader = threading.Thread(target=lambda: got.append(b.recv()))
    reader.start()
    while not b._reading:  # noqa: SLF001 - wait for the reader to be inside recv
        time.sleep(0.001)
    b.close()
    assert b.fds() and b.send_closed  # the receiving end stays open for the read in progress
    a.send("last")
    reader.join(5)
    assert got == ["last"] and b.fds() == ()
    a.close()


# --------------------------------------------------------------------------- child process


def test_child_answers_and_closes_gracefully(capfd: pytest.CaptureFixture[str]) -> None:
    child = ChildProcess(f"{TARGETS}:echo", ["7"])
    ready = child.wait_ready(60)
    assert ready == ("ready", child.pid) and child.wait_ready(0) is ready
    assert os.getpgid(child.pid) == child.pid != os.getpgid(0)  # a process group of its own
    channel = child.channels[0]
    channel.send({"ask": 1})
    assert channel.poll(30) and channel.recv() == {"ask": 1}
    assert child.alive
    assert child.close(grace=30) == 7  # it saw the end of its input and returned 7
    assert not child.alive and child.close() == 7
    assert "a stray print from a library" in capfd.readouterr().err


def test_a_killed_child_shows_as_end_of_stream() -> None:
    child = ChildProcess(f"{TARGETS}:echo")
    child.wait_ready(60)
    os.kill(child.pid, signal.SIGKILL)
    assert child.channels[0].recv() is None  # may come a moment before the exit status
    assert child.close() == -signal.SIGKILL and not child.alive


def test_a_child_that_fails_while_starting_is_reported() -> None:
    child = ChildProcess(f"{TARGETS}:broken")
    with pytest.raises(RuntimeError, match=r"the test child exited while starting \(code 1\)"):
        child.wait_ready(60, "the test child")
    child.close()


def test_a_child_that_never_answers_has_its_group_killed() -> None:
    child = ChildProcess(f"{TARGETS}:deaf")
    _, leader, grandchild = child.wait_ready(60)
    channel = child.channels[0]
    channel.send("anyone?")
    assert not channel.poll(0.2)
    assert child.close(grace=0.2) == -signal.SIGKILL  # it ignored the end of its input
    assert _wait_gone([leader, grandchild])  # the grandchild went with the group


def test_forked_siblings_each_keep_one_channel() -> None:
    child = ChildProcess(f"{TARGETS}:siblings", channels=3)
    pids = [channel.recv() for channel in child.channels]
    assert len(set(pids)) == 3 and all(os.getpgid(pid) == child.pid for pid in pids)
    child.kill_member(os.getpid())  # not in the child's group: ignored
    child.kill_member(pids[1])
    assert child.channels[1].recv() is None
    for index in (0, 2):
        child.channels[index].send("still there?")
        assert child.channels[index].recv() == (pids[index], "still there?")
    for channel in child.channels[:2]:
        child.release(channel)
    assert child.alive  # one channel is still in use
    child.release(child.channels[2], grace=30)
    assert not child.alive and _wait_gone(pids)


_PARENT = """
import sys
from pytest_themis.core.process_host import ChildProcess
child = ChildProcess(sys.argv[1])
print(child.wait_ready(60)[1], flush=True)
sys.stdin.read()  # until the test kills this process
"""


@pytest.mark.parametrize("target", ["echo", "slow_import"])
def test_a_child_whose_parent_dies_exits(target: str) -> None:
    """At the end of its input (``echo``) or through the orphan watch (``slow_import``)."""
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, f"{TARGETS}:{target}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        assert not _gone(child_pid)
        parent.kill()
        parent.wait()
        assert _wait_gone([child_pid]), f"the {target} child outlived its parent"
    finally:
        parent.kill()
        parent.communicate()


_BUSY_CALLER = """
import sys, threading
from pytest_themis.evaluation._sandbox import WorkerPool
handler, payload = sys.argv[1], sys.argv[2]
pool = WorkerPool(handler, 1)
pool.start()
threading.Thread(target=pool.map, args=([payload], 300), daemon=True).start()
print(pool.host_pid, flush=True)
sys.stdin.read()  # until the test kills this process
"""
#: Long items for a sandbox worker: one that sleeps, one stuck in C code holding the GIL.
BUSY = {"sleeping": "mark_then_sleep", "holding the GIL": "mark_then_hold_the_gil"}


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(p) for p in task.read_text().split()]
    return found


@contextlib.contextmanager
def _busy_pool(busy: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, list[int]]]:
    """A caller process whose sandbox host has one worker busy on a long item:
    (the caller, the host's pid, the workers' pids)."""
    mark = tmp_path / "busy"
    caller = subprocess.Popen(
        [sys.executable, "-c", _BUSY_CALLER, f"{TARGETS}:{BUSY[busy]}", str(mark)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    host = None
    try:
        assert caller.stdout is not None
        host = int(caller.stdout.readline())
        deadline = time.monotonic() + 30
        while not mark.exists() and time.monotonic() < deadline:
            time.sleep(0.02)  # polling for the worker to start the item, with a deadline
        workers = _children(host)
        assert mark.exists() and workers, "no worker started the item"
        yield caller, host, workers
    finally:
        caller.kill()
        caller.communicate()
        if host is not None:  # a test that failed must not leave a worker spinning on a core
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(host, signal.SIGKILL)


@pytest.mark.parametrize("busy", list(BUSY))
def test_a_sandbox_host_busy_on_a_worker_dies_with_its_caller(busy: str, tmp_path: Path) -> None:
    """The caller is SIGKILLed while the host waits on a worker running a long item: the host
    and the worker it forked stop too (they used to wait on the worker forever)."""
    with _busy_pool(busy, tmp_path) as (caller, host, workers):
        caller.kill()
        caller.wait()
        assert _wait_gone([host, *workers], timeout=10), "the host outlived its caller"


@pytest.mark.parametrize("busy", list(BUSY))
def test_a_busy_sandbox_worker_dies_with_its_host_alone(busy: str, tmp_path: Path) -> None:
    """Only the host is SIGKILLed (as Ray kills a dead worker's children), with the caller
    frozen so that its pool cannot kill the host's group: the worker stops by itself, even
    while C code holds its GIL (a math-verify item once kept such a worker spinning)."""
    with _busy_pool(busy, tmp_path) as (caller, host, workers):
        caller.send_signal(signal.SIGSTOP)
        try:
            os.kill(host, signal.SIGKILL)  # the host only, not its group
            assert _wait_gone(workers, timeout=10), "the worker outlived its host"
        finally:
            caller.send_signal(signal.SIGCONT)
