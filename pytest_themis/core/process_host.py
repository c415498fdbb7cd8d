"""Child interpreters that host worker processes: start them, talk to them, stop them.

The parent starts ``python -c <boot> <root> <target> <fds> <args…>`` (``root``: where this
package lives, so the child imports the same copy) in a process group of its own, with one
:class:`Channel` (two pipes carrying length-prefixed pickles) per worker the child will host.
The child runs ``target(channels, *args)`` with its stdout sent to stderr, so a library's
prints never reach a channel. A child exits when its input ends (the parent hung up or died);
:func:`exit_if_orphaned` covers a long import, when nothing reads the input yet.
:meth:`ChildProcess.close` hangs up, allows a grace period, then kills the child's whole
process group (it and every process it forked) and reaps it.

POSIX only.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "Channel",
    "ChildProcess",
    "child_main",
    "die_with_parent",
    "exit_if_orphaned",
    "fork_per_channel",
    "killed_with_forking_thread",
]

_HEADER = struct.Struct("!I")
_CHUNK = 1 << 16
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
#: Puts this package's root first on the child's path only when it is missing (the root of an
#: installed package, site-packages, must not move ahead of the standard library).
_BOOT = (
    "import sys; root = sys.argv[1]; root in sys.path or sys.path.insert(0, root); "
    "from pytest_themis.core.process_host import child_main; sys.exit(child_main(sys.argv[2:]))"
)


class Channel:
    """Pickled messages over two pipe ends it owns: ``send`` out, ``recv`` in.

    :meth:`send` may be called from any thread; :meth:`recv`/:meth:`poll` from one at a time.
    ``None`` is not a message: :meth:`recv` returns it at the end of the stream.
    """

    def __init__(self, read_fd: int | None, write_fd: int | None) -> None:
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._buffer = bytearray()
        self._start = 0  # where the unread part of the buffer begins
        self._send_lock = threading.Lock()
        self._state = threading.Lock()
        self._reading = False
        self._close_requested = False

    def fds(self) -> tuple[int, ...]:
        """The descriptors still open (a forked process closes what it does not use)."""
        return tuple(fd for fd in (self._read_fd, self._write_fd) if fd is not None)

    # -- out ------------------------------------------------------------------------------------

    def send(self, obj: Any) -> None:
        """Send one message; ``OSError`` when the other side has gone or this end is closed."""
        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        frame = _HEADER.pack(len(data)) + data
        with self._send_lock:
            if self._write_fd is None:
                raise BrokenPipeError("this channel's sending end is closed")
            written = os.write(self._write_fd, frame)
            if written < len(frame):  # larger than the pipe had room for
                with memoryview(frame) as view:
                    while written < len(frame):
                        written += os.write(self._write_fd, view[written:])

    @property
    def send_closed(self) -> bool:
        return self._write_fd is None

    def close_send(self) -> None:
        """Close the sending end: the other side reads the end of its input."""
        with self._send_lock:
            fd, self._write_fd = self._write_fd, None
        if fd is not None:
            os.close(fd)

    # -- in -------------------------------------------------------------------------------------

    def recv(self) -> Any:
        """The next message (waiting for it), or ``None`` at the end of the stream."""
        frame = self._buffered_frame()
        if frame is None:
            with self._state:
                if self._read_fd is None:
                    return None
                self._reading = True
            try:
                frame = self._read_frame()
            finally:
                with self._state:
                    self._reading = False
                    if frame is None or self._close_requested:
                        self._close_recv()
        return None if frame is None else pickle.loads(frame)

    def poll(self, timeout: float | None = 0.0) -> bool:
        """Whether :meth:`recv` has something (a message or the end) within ``timeout`` s."""
        fd = self._read_fd
        if fd is None or self._frame_size() is not None:
            return True
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(None if timeout is None else max(0.0, timeout) * 1000))

    def _frame_size(self) -> int | None:
        """The size of the whole frame (header included) at the start of the buffer, if in it."""
        if len(self._buffer) - self._start < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(self._buffer, self._start)
        size += _HEADER.size
        return size if len(self._buffer) - self._start >= size else None

    def _buffered_frame(self) -> bytes | None:
        size = self._frame_size()
        if size is None:
            return None
        start, self._start = self._start, self._start + size
        return bytes(self._buffer[start + _HEADER.size : start + size])

    def _read_frame(self) -> bytes | None:
        """Read until a whole frame is buffered; None at the end of the stream."""
        assert self._read_fd is not None
        del self._buffer[: self._start]  # what was consumed goes before more is read
        self._start = 0
        while (frame := self._buffered_frame()) is None:
            missing = _HEADER.size - len(self._buffer)
            if missing <= 0:
                missing = _HEADER.unpack_from(self._buffer)[0] + _HEADER.size - len(self._buffer)
            try:
                chunk = os.read(self._read_fd, max(_CHUNK, missing))
            except OSError:
                return None
            if not chunk:
                return None
            self._buffer += chunk
        return frame

    def _close_recv(self) -> None:
        fd, self._read_fd = self._read_fd, None
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        """Close both ends; a receiving end in use by :meth:`recv` closes when that returns."""
        self.close_send()
        with self._state:
            if self._reading:
                self._close_requested = True
            else:
                self._close_recv()


class ChildProcess:
    """A child interpreter running ``target(channels, *args)`` in a process group of its own.

    ``target`` is ``"module:function"``, imported in the child (this package is importable
    there); ``channels`` pairs of pipes connect it to this process.
    """

    def __init__(self, target: str, args: Sequence[str] = (), *, channels: int = 1) -> None:
        ours: list[Channel] = []
        theirs: list[int] = []
        for _ in range(channels):
            to_read, to_write = os.pipe()
            from_read, from_write = os.pipe()
            ours.append(Channel(from_read, to_write))
            theirs += [to_read, from_write]
        fds = ",".join(map(str, theirs))
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, _PACKAGE_ROOT, target, fds, *args],
                stdin=subprocess.DEVNULL,
                pass_fds=theirs,
                start_new_session=True,  # its own process group: one killpg stops all it forked
            )
        except BaseException:
            for channel in ours:
                channel.close()
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        self.channels = ours
        self.pid = self.process.pid
        self._greeting: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def alive(self) -> bool:
        """The child has not exited (checked without reaping it: its group id stays ours)."""
        if self.process.returncode is not None:
            return False
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
        except ChildProcessError:  # reaped elsewhere
            return False

    def wait_ready(self, timeout: float, what: str = "the child process") -> Any:
        """The child's first message on its first channel (its word that it is ready).

        Waits at most ``timeout`` seconds the first time; later calls return it at once.
        """
        if self._greeting:
            return self._greeting[0]
        channel = self.channels[0]
        if not channel.poll(timeout):
            raise RuntimeError(f"{what} did not start within {timeout:g}s")
        message = channel.recv()
        if message is None:
            code = self.process.wait()
            raise RuntimeError(f"{what} exited while starting (code {code}); see stderr")
        self._greeting.append(message)
        return message

    def kill_group(self) -> None:
        """SIGKILL the child and every process it forked."""
        with self._lock:
            if not self._closed:
                _kill(os.killpg, self.pid)

    def kill_member(self, pid: int) -> None:
        """SIGKILL one process of the child's group (a worker it forked), if it is one."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == self.pid:
                os.kill(pid, signal.SIGKILL)

    def release(self, channel: Channel, grace: float = 2.0) -> None:
        """Done with ``channel`` (its sending end closes); the last one released closes all."""
        channel.close_send()
        if all(c.send_closed for c in self.channels):
            self.close(grace)

    def close(self, grace: float = 5.0) -> int:
        """Hang up, give the child ``grace`` seconds to exit, kill its group, reap it.

        Returns the child's exit code; closing again only returns it.
        """
        with self._lock:
            if self._closed:
                return self.process.wait()
            self._closed = True
        for channel in self.channels:
            channel.close()
        if grace > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
        _kill(os.killpg, self.pid)  # whatever it forked and left behind goes too
        return self.process.wait()


def _kill(kill: Callable[[int, int], None], pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        kill(pid, signal.SIGKILL)


# =========================================================================== in the child


@contextlib.contextmanager
def exit_if_orphaned(every: float = 0.2) -> Iterator[None]:
    """While the block runs, exit at once if the parent process goes away.

    Later the end of input tells; during a long import nothing reads it. The watcher is
    stopped and joined before the block ends, so the process may fork single-threaded.
    """
    parent = os.getppid()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(every):
            if os.getppid() != parent:
                os._exit(0)

    watcher = threading.Thread(target=watch, name="themis-orphan-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def die_with_parent(every: float = 0.5, parent: int | None = None) -> None:
    """From now on, stop this process's whole group at once if the parent process goes away.

    For a child that may be busy (waiting on a worker it forked, say) when its caller is killed:
    it would never read the end of its input. A daemon thread polls the parent; forking while it
    runs is safe (the thread holds no lock a forked child uses). ``parent``: the pid expected
    (read before a fork, so a parent that died meanwhile is noticed); by default the current one.
    """
    if parent is None:
        parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(every)  # polling the parent's pid: there is no event to wait on
            if os.getppid() != parent:
                if os.getpgrp() == os.getpid():
                    os.killpg(os.getpid(), signal.SIGKILL)  # this process and all it forked
                os._exit(0)

    threading.Thread(target=watch, name="themis-parent-watch", daemon=True).start()


def killed_with_forking_thread(parent: int) -> bool:
    """Ask the kernel to SIGKILL this process when the thread that forked it ends (Linux).

    Unlike :func:`die_with_parent` this needs no Python thread to run, so it also stops a
    process stuck in C code that never releases the GIL. Only for a process forked by a thread
    that lives as long as its parent (the kernel fires when that *thread* exits). Returns False
    where the kernel offers no such request, and exits at once if ``parent`` (the pid of the
    process that forked this one, read before the fork) is already gone.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # it died before the request was made
        os._exit(0)
    return True


_PR_SET_PDEATHSIG = 1


def fork_per_channel(channels: Sequence[Channel]) -> Channel:
    """Fork once per channel after the first; each process keeps one channel, closes the rest.

    Call it single-threaded. Forked processes are reaped automatically (``SIGCHLD`` ignored).
    """
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    mine = channels[0]
    for channel in channels[1:]:
        if os.fork() == 0:
            mine = channel
            break
    for channel in channels:
        if channel is not mine:
            channel.close()
    return mine


def child_main(argv: list[str]) -> int:
    """Boot of a :class:`ChildProcess`: ``argv`` is ``target fds args…``."""
    target, fds, *args = argv
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into a channel
    sys.stdout = sys.stderr
    numbers = [int(fd) for fd in fds.split(",")]
    channels = [Channel(r, w) for r, w in zip(numbers[0::2], numbers[1::2], strict=True)]
    module_name, _, function = target.partition(":")
    with exit_if_orphaned():
        entry = getattr(importlib.import_module(module_name), function)
    return int(entry(channels, *args) or 0)
