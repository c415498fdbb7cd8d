"""Run untrusted Python (a model's code) in its own process, fenced in.

Each program runs in a fresh interpreter started with ``python -I`` in a new session, in a
temporary working directory that is deleted afterwards, with an empty environment (no API keys).
Layers, from the outside in:

- **Wall clock**: the whole process group is killed after ``timeout`` seconds (hangs, sleeps).
- **Resource limits** (``setrlimit``): CPU seconds, address space, size of any written file,
  number of processes, no core files.
- **Privileges**: when started as root, the child enters a network namespace of its own (no
  network at all) and drops to the ``nobody`` user when ``nobody`` can read the standard library
  (then it cannot write the user's files, the cache or the repository at all).
- **Audit hook** (PEP 578), installed before the program runs: forking, spawning processes,
  importing ``ctypes``/``subprocess``/``multiprocessing``, network connections (unless allowed)
  and writing, deleting or renaming anything outside the working directory raise an error.

A program that crashes, hangs, exhausts a limit or touches what it may not fails; it never takes
the calling process down. The audit hook is not a security boundary against a determined attacker
(the process limits and the dropped privileges are the stronger layers); it turns the accidents
and escapes that model code actually produces into clean failures.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigurationError

__all__ = ["SandboxLimits", "SandboxResult", "run_program", "run_programs"]

Status = Literal["passed", "failed", "timeout", "killed"]

_NOBODY = 65534
_OUTPUT_TAIL = 2000


@dataclass(frozen=True)
class SandboxLimits:
    """What one program may use. Sizes in MiB, times in seconds."""

    timeout: float = 5.0
    cpu_seconds: int = 10
    memory_mb: int = 1024
    file_size_mb: int = 16
    max_processes: int = 64
    network: bool = False

    def __post_init__(self) -> None:
        for name in ("timeout", "cpu_seconds", "memory_mb", "file_size_mb", "max_processes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigurationError(
                    f"SandboxLimits.{name} must be a positive number, got {value!r}"
                )


@dataclass(frozen=True)
class SandboxResult:
    """How one program ended: ``passed`` (exit 0), ``failed``, ``timeout`` or ``killed``."""

    status: Status
    returncode: int | None
    output: str
    duration: float

    @property
    def passed(self) -> bool:
        return self.status == "passed"


# Runs inside the child interpreter (``python -I -c``) before the candidate program. argv:
# [workdir, cpu, memory_bytes, fsize_bytes, nproc, network(0/1), drop_to_uid(-1 = keep)].
_LAUNCHER = r"""
import os, resource, sys
workdir, cpu, mem, fsize, nproc, network, uid = sys.argv[1:8]
cpu, mem, fsize, nproc, uid = int(cpu), int(mem), int(fsize), int(nproc), int(uid)
network = network == "1"
if not network and os.geteuid() == 0:
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).unshare(0x40000000)  # CLONE_NEWNET: no network
    except Exception:
        pass
    for name in ("ctypes", "_ctypes", "ctypes._endian"):
        sys.modules.pop(name, None)
for limit, value in ((resource.RLIMIT_CPU, cpu), (resource.RLIMIT_AS, mem),
                     (resource.RLIMIT_FSIZE, fsize), (resource.RLIMIT_NPROC, nproc),
                     (resource.RLIMIT_CORE, 0)):
    try:
        resource.setrlimit(limit, (value, value))
    except (ValueError, OSError):
        pass
if uid >= 0:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
os.chdir(workdir)
root = os.path.realpath(workdir)
def inside(path):
    if isinstance(path, int):
        return True
    try:
        full = os.path.realpath(os.fsdecode(path))
    except Exception:
        return False
    return full == root or full.startswith(root + os.sep)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
BLOCKED = {"os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
           "subprocess.Popen", "ctypes.dlopen", "ctypes.dlsym", "os.kill", "os.killpg",
           "pty.spawn", "os.startfile"}
BLOCKED_IMPORTS = {"ctypes", "_ctypes", "_posixsubprocess", "multiprocessing", "_multiprocessing",
                   "subprocess", "pty"}
PATH_EVENTS = {"os.remove", "os.rmdir", "os.mkdir", "os.rename", "os.chmod", "os.chown",
               "os.link", "os.symlink", "os.truncate", "os.utime", "shutil.rmtree",
               "shutil.move", "shutil.copyfile", "os.replace"}
def hook(event, args):
    if event == "import" and args and str(args[0]).split(".")[0] in BLOCKED_IMPORTS:
        raise ImportError(f"sandbox: importing {args[0]} is not allowed")
    if event in BLOCKED:
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None, None))[:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & WRITE_FLAGS)
        if writes and not inside(path):
            raise PermissionError(f"sandbox: writing {path!r} outside the working directory")
    elif event in PATH_EVENTS:
        paths = [a for a in args if isinstance(a, (str, bytes, os.PathLike))]
        if event in ("shutil.copyfile", "os.rename", "os.replace", "shutil.move", "os.link",
                     "os.symlink"):
            paths = paths[1:2] if event == "shutil.copyfile" else paths
        if any(not inside(p) for p in paths):
            raise PermissionError(f"sandbox: {event} outside the working directory")
    elif not network and event in ("socket.connect", "socket.bind", "socket.sendto",
                                   "socket.getaddrinfo"):
        raise PermissionError("sandbox: network access is not allowed")
with open("candidate.py", encoding="utf-8") as handle:
    source = handle.read()
code = compile(source, "candidate.py", "exec")
sys.addaudithook(hook)
namespace = {"__name__": "__main__", "__builtins__": __builtins__}
exec(code, namespace)
"""


def _drop_to_uid() -> int:
    """The uid to run as: ``nobody`` when we are root and ``nobody`` can read the standard
    library (it cannot when Python lives in root's home), else -1 (stay as we are)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return -1
    return _NOBODY if _world_readable(os.path.dirname(os.__file__)) else -1


def _world_readable(path: str) -> bool:
    """Whether every folder down to ``path`` can be entered, and ``path`` read, by anyone."""
    import stat

    current = os.path.realpath(path)
    while True:
        try:
            mode = os.stat(current).st_mode
        except OSError:
            return False
        if not mode & stat.S_IXOTH:
            return False
        parent = os.path.dirname(current)
        if parent == current:
            return True
        current = parent


def run_program(source: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``source`` as a Python program under ``limits``; exit code 0 means it passed."""
    limits = limits or SandboxLimits()
    started = time.perf_counter()
    workdir = tempfile.mkdtemp(prefix="themis-sandbox-")
    try:
        uid = _drop_to_uid()
        with open(os.path.join(workdir, "candidate.py"), "w", encoding="utf-8") as handle:
            handle.write(source)
        if uid >= 0:
            os.chown(workdir, uid, uid)
            os.chmod(workdir, 0o700)
        argv = [
            sys.executable,
            "-I",
            "-S",
            "-B",
            "-c",
            _LAUNCHER,
            workdir,
            str(int(limits.cpu_seconds)),
            str(int(limits.memory_mb) * 2**20),
            str(int(limits.file_size_mb) * 2**20),
            str(int(limits.max_processes)),
            "1" if limits.network else "0",
            str(uid),
        ]
        env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "LANG": "C.UTF-8"}
        proc = subprocess.Popen(
            argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            output, _ = proc.communicate(timeout=limits.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            output, _ = proc.communicate()
            return _result("timeout", None, output, started)
        finally:
            _kill_group(proc.pid)  # whatever the program left behind (forks that escaped)
        code = proc.returncode
        if code == 0:
            return _result("passed", code, output, started)
        return _result("killed" if code < 0 else "failed", code, output, started)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_programs(
    sources: Sequence[str], limits: SandboxLimits | None = None, workers: int | None = None
) -> list[SandboxResult]:
    """Run many programs, ``workers`` at a time (default: one per CPU), in input order."""
    if not sources:
        return []
    workers = workers or max(1, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="themis-sandbox") as pool:
        return list(pool.map(lambda source: run_program(source, limits), sources))


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _result(status: Status, code: int | None, output: bytes, started: float) -> SandboxResult:
    text = output.decode("utf-8", "replace") if output else ""
    if len(text) > _OUTPUT_TAIL:
        text = "…" + text[-_OUTPUT_TAIL:]
    return SandboxResult(status, code, text, time.perf_counter() - started)
