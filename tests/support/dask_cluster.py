"""Real Dask clusters for tests: an in-process ``LocalCluster`` and a scheduler + workers started
as subprocesses on free ports (connected by address, stopped by PID).

When dask.distributed is not installed or the cluster does not come up, the helpers call
:func:`support.services.service_missing` (skip locally, fail in CI).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .services import free_port, service_missing

INSTALL = 'pip install "pytest-themis[dask]"'
#: How long a cluster may take to start on a loaded machine.
START_TIMEOUT = 90.0


def require_distributed() -> Any:
    """The ``distributed`` module, or :func:`service_missing`."""
    try:
        import distributed
    except ImportError:
        service_missing("dask.distributed", INSTALL)
    return distributed


@contextlib.contextmanager
def local_cluster(n_workers: int = 2, config: dict[str, Any] | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` on a ``LocalCluster`` of ``n_workers`` single-thread processes
    (each under a nanny, which restarts it if it dies); ``config`` is Dask configuration set
    while the cluster lives (e.g. ``{"distributed.scheduler.allowed-failures": 0}``).
    """
    distributed = require_distributed()
    import dask

    with dask.config.set(config or {}):
        yield from _local_cluster(distributed, n_workers)


def _local_cluster(distributed: Any, n_workers: int) -> Iterator[Any]:
    try:
        cluster = distributed.LocalCluster(
            n_workers=n_workers,
            processes=True,
            threads_per_worker=1,
            dashboard_address=":0",
            host="127.0.0.1",
            memory_limit=0,
        )
    except Exception as exc:  # noqa: BLE001 - any start failure means "no cluster"
        service_missing("a Dask LocalCluster", f"it did not start ({exc}); {INSTALL}")
    try:
        with distributed.Client(cluster, set_as_default=False) as client:
            client.wait_for_workers(n_workers, timeout=START_TIMEOUT)
            yield client
    finally:
        cluster.close()


@dataclass
class SubprocessCluster:
    """A ``dask scheduler`` and ``dask worker`` processes; :meth:`stop` ends them by PID."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [self.scheduler.pid, *(w.pid for w in self.workers)]

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)


#: The tests folder: on the subprocesses' path so they can load test models (``support.…``).
TESTS_DIR = Path(__file__).resolve().parent.parent


def _dask(*args: str, log: Path) -> subprocess.Popen[bytes]:
    path = os.pathsep.join(p for p in (str(TESTS_DIR), os.environ.get("PYTHONPATH")) if p)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "dask", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONPATH": path},
        )


def poll(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait until ``condition()`` holds (checked every 50 ms); AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def subprocess_cluster(workdir: Path, n_workers: int = 2) -> Iterator[SubprocessCluster]:
    """Start ``dask scheduler`` + ``n_workers`` ``dask worker`` (no nanny, one thread each) on
    127.0.0.1; yield once every worker has joined. Logs go to ``workdir``.
    """
    distributed = require_distributed()
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _dask(
        "scheduler",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-dashboard",
        log=workdir / "scheduler.log",
    )
    cluster = SubprocessCluster(address, scheduler)
    try:
        for i in range(n_workers):
            cluster.workers.append(
                _dask(
                    "worker",
                    address,
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--memory-limit",
                    "0",
                    "--death-timeout",
                    "60",
                    "--local-directory",
                    str(workdir / f"worker{i}"),
                    log=workdir / f"worker{i}.log",
                )
            )
        try:
            with distributed.Client(address, timeout=START_TIMEOUT, set_as_default=False) as c:
                if n_workers:
                    c.wait_for_workers(n_workers, timeout=START_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            logs = "; ".join(
                f"{p.name}: {p.read_text(errors='replace')[-300:]!r}"
                for p in sorted(workdir.glob("*.log"))
            )
            service_missing("a Dask scheduler + workers", f"they did not start ({exc}); {logs}")
        yield cluster
    finally:
        cluster.stop()


@dataclass(frozen=True)
class StallingModel:
    """A python model for fault tests: answers the prompt reversed and logs each call
    (``<pid> <prompt>`` lines in ``directory/calls.log``).

    In a process for which ``directory/stall-<pid>`` exists, the first call creates
    ``stalled-<pid>`` and then hangs, so a test can kill that process while it holds a batch.
    """

    directory: str
    delay: float = 0.0

    def __call__(self, prompt: str) -> str:
        folder = Path(self.directory)
        pid = os.getpid()
        with (folder / "calls.log").open("a") as log:
            log.write(f"{pid} {prompt}\n")
        if (folder / f"stall-{pid}").exists():
            (folder / f"stalled-{pid}").touch()
            time.sleep(120)  # the test kills this process long before
        if self.delay:
            time.sleep(self.delay)
        return prompt[::-1]

    def calls(self) -> list[tuple[int, str]]:
        """``(pid, prompt)`` of every call so far."""
        log = Path(self.directory) / "calls.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [(int(pid), prompt) for pid, _, prompt in (ln.partition(" ") for ln in lines)]
