"""Dask execution: generation batches on the workers of a ``dask.distributed`` cluster.

``DaskExecutionBackend("tcp://host:8786")`` (or ``"dask://host:8786"``, ``"host:8786"``) connects
to a running scheduler; ``DaskExecutionBackend(client)`` uses your ``distributed.Client``; with
neither, the current default client is used, or a ``LocalCluster`` of ``n_workers`` processes is
started (and closed with the backend). Each worker process keeps one generation kernel per run
(its providers and event loop, built on its first batch) and serves batches through
:func:`~pytest_themis.backends._remote.run_task_batch`; the shared dispatcher keeps the window,
streams records back and resubmits a batch whose worker died. Install with
``pip install "pytest-themis[dask]"``.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError
from typing import Any

from ..core.entities import GenerationTask
from ..errors import ConfigurationError, ThemisError
from ..generation.settings import BatchResult
from ._remote import RemoteExecutionBackend, WorkerJob, WorkerLost, cancel_run, run_task_batch
from .scoring import Scorer

__all__ = ["DaskExecutionBackend", "scheduler_address"]

_INSTALL = 'pip install "pytest-themis[dask]"'
#: Seconds to wait for the scheduler (and for a first worker) before giving up.
DEFAULT_CONNECT_TIMEOUT = 5.0
_SCHEMES = ("tcp://", "tls://", "ucx://", "inproc://", "ws://", "wss://")


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ConfigurationError(
            f"the Dask execution backend needs dask.distributed, which is not installed: {_INSTALL}"
        ) from None
    return distributed


def scheduler_address(address: str) -> str:
    """The scheduler address Dask connects to: ``dask://h:p`` and ``h:p`` become ``tcp://h:p``
    (port 8786 when none is given); ``tcp://``, ``tls://`` … pass through.
    """
    text = address.strip()
    if text.startswith(_SCHEMES):
        return text
    if text.startswith("dask://"):
        text = text[len("dask://") :]
    if "://" in text or not text or text.startswith(":"):
        raise ConfigurationError(
            f"Dask scheduler address {address!r} is not host:port; "
            "use tcp://host:8786 or dask://host:8786"
        )
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, "8786"
    if not port.isdigit() or not host:
        raise ConfigurationError(
            f"Dask scheduler address {address!r} has no valid port; use tcp://host:8786"
        )
    return f"tcp://{host}:{port}"


def _run_batch_seceded(job: WorkerJob, batch: list[GenerationTask]) -> BatchResult:
    """Run a batch without holding one of the worker's task threads.

    The batch runs on the process's event loop (the calling thread only waits), so the task
    leaves the worker's thread pool and the next batch can start at once; the dispatcher's
    window, not the worker's thread count, bounds the requests in flight.
    """
    from distributed import secede

    try:
        secede()
    except (ValueError, KeyError, AttributeError):  # not in a worker task thread: run as is
        pass
    return run_task_batch(job, batch)


def _worker_check() -> str:
    """Run on each worker by :meth:`_DaskAdapter.start`: proves pytest_themis imports there."""
    from .. import __version__

    return __version__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


#: Seconds between checks of the awaited futures themselves while no done callback arrives.
_RECHECK = 1.0


class _DaskAdapter:
    """:class:`~pytest_themis.backends._remote.EngineAdapter` for a Dask cluster."""

    def __init__(
        self,
        address: str | None,
        client: Any,
        n_workers: int | None,
        connect_timeout: float,
    ) -> None:
        self.address = address
        self.n_workers = n_workers
        self.connect_timeout = connect_timeout
        self._client = client
        self._owns_client = False
        self._cluster: Any = None
        self._distributed: Any = None
        self._workers = 0
        # Futures land in ``_finished`` (from Dask's callback thread) when done; ``wait_any``
        # moves them to ``_ready``, where they stay until ``result`` or ``cancel`` takes them, so
        # a handle handed out but not yet collected is still found by the next wait (as with
        # ``ray.wait``). ``distributed.wait`` needs a default client; ``as_completed`` measured
        # slower (its blocking wait can sleep 100 ms).
        self._finished: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._ready: set[Any] = set()

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` in use (None before :meth:`start`)."""
        return self._client

    def start(self) -> int:
        distributed = self._distributed = _import_distributed()
        if self._client is None:
            self._connect(distributed)
        where = self._where()
        if self._client.status not in ("running", "connecting", "newly-created"):
            raise ConfigurationError(
                f"the Dask client for {where} is {self._client.status}; pass a connected Client"
            )
        try:
            self._client.wait_for_workers(1, timeout=self.connect_timeout)
        except (TimeoutError, OSError):
            raise ConfigurationError(
                f"the Dask scheduler at {where} has no workers; start some with "
                f"`dask worker {where}`"
            ) from None
        try:
            versions = self._client.run(_worker_check)
        except Exception as exc:  # noqa: BLE001 - whatever the worker raised
            raise ConfigurationError(
                f"the Dask workers of {where} cannot run pytest-themis ({_first_line(exc)}); "
                "install pytest-themis in the workers' environment"
            ) from None
        self._workers = max(1, len(versions))
        return self._workers

    def _connect(self, distributed: Any) -> None:
        if self.address is None:
            try:
                self._client = distributed.default_client()
                return
            except ValueError:  # no default client: start a local cluster of our own
                pass
            self._cluster = distributed.LocalCluster(
                n_workers=self.n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            self.address = self._cluster.scheduler_address
            self._client = distributed.Client(self._cluster, set_as_default=False)
            self._owns_client = True
            return
        try:
            self._client = distributed.Client(
                self.address, timeout=self.connect_timeout, set_as_default=False
            )
        except (OSError, TimeoutError) as exc:
            raise ConfigurationError(
                f"cannot reach the Dask scheduler at {self.address} ({_first_line(exc)}); start "
                f"one with `dask scheduler` and `dask worker {self.address}`, or fix the address"
            ) from None
        self._owns_client = True

    def _where(self) -> str:
        if self.address is None and self._client is not None:
            self.address = str(self._client.scheduler.address)
        return str(self.address)

    def submit(self, job: WorkerJob, batch: list[GenerationTask]) -> Any:
        future = self._client.submit(_run_batch_seceded, job, batch, pure=False)
        future.add_done_callback(self._finished.put)  # called on success, error or cancel
        return future

    def submit_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Start ``fn(*args)`` on a worker (scattered futures among ``args`` arrive as values)."""
        future = self._client.submit(fn, *args, pure=False)
        future.add_done_callback(self._finished.put)
        return future

    def ship(self, obj: Any) -> Any:
        """``obj`` scattered to every worker (so losing one worker loses no copy)."""
        return self._client.scatter(obj, broadcast=True, hash=False)

    def release(self, shipped: Any) -> None:
        shipped.release()

    def run_everywhere(self, fn: Callable[..., Any], *args: Any) -> None:
        self._client.run(fn, *args, on_error="ignore")  # a lost worker has nothing to close

    def wait_any(self, handles: Sequence[Any], timeout: float | None) -> list[Any]:
        wanted = set(handles)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready & wanted:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return []
            try:
                self._ready.add(self._finished.get(timeout=min(_RECHECK, remaining or _RECHECK)))
            except queue.Empty:
                # Done callbacks are the fast path; asking the futures themselves now and then
                # keeps a wait from depending on a callback alone (a test once hung here).
                self._ready.update(h for h in wanted if h.done())
        while True:  # and whatever else has finished meanwhile
            try:
                self._ready.add(self._finished.get_nowait())
            except queue.Empty:
                break
        return list(self._ready & wanted)

    def result(self, handle: Any) -> BatchResult:
        distributed = self._distributed
        self._ready.discard(handle)
        try:
            result: BatchResult = handle.result()
        except distributed.KilledWorker as exc:
            raise WorkerLost(_first_line(exc)) from exc
        except (OSError, CancelledError) as exc:
            # CommClosedError is an OSError: the worker holding the result went away.
            if self._client.status != "running":
                raise ThemisError(
                    f"lost the connection to the Dask scheduler at {self._where()} "
                    f"({_first_line(exc)}); rerun to resume from the cache"
                ) from None
            raise WorkerLost(_first_line(exc)) from exc
        return result

    def cancel(self, job_id: str, handles: Sequence[Any]) -> None:
        # Cancelling a future does not stop a task already running (ours run seceded on the
        # worker's loop), so every worker is also told to cancel the run's requests.
        self._client.cancel(list(handles))
        self._ready.difference_update(handles)
        self._client.run(cancel_run, job_id)

    def shutdown(self) -> None:
        self._ready.clear()
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
            self.address = None
        self._owns_client = False

    def describe(self) -> dict[str, Any]:
        return {
            "engine": "dask",
            "address": self.address or "local",
            "workers": self._workers or self.n_workers,
        }


class DaskExecutionBackend(RemoteExecutionBackend):
    """Generation on Dask workers (``pip install "pytest-themis[dask]"``).

    ``address``: a scheduler address (``"tcp://host:8786"``, ``"dask://host:8786"``,
    ``"host:8786"``) or a ``distributed.Client``; ``client=`` names a Client explicitly. With
    neither, the default client is used, else a ``LocalCluster`` of ``n_workers`` single-thread
    processes is started (its scheduler runs in this process, competing with the run for
    its CPU; for large runs start ``dask scheduler`` and ``dask worker`` processes and pass the
    address). ``batch_size`` defaults to about two batches in flight per worker.
    A missing dask, an unreachable scheduler (after ``connect_timeout`` seconds) or a cluster
    without workers is a :class:`~pytest_themis.errors.ConfigurationError` from :meth:`open`,
    before any request. A client you pass stays open; one the backend made is closed by
    :meth:`shutdown`.
    """

    def __init__(
        self,
        address: Any = None,
        *,
        client: Any = None,
        batch_size: int | None = None,
        n_workers: int | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        if address is not None and not isinstance(address, str):
            if client is not None:
                raise ConfigurationError("pass a Dask Client either positionally or as client=")
            address, client = None, address
        if address is not None and client is not None:
            raise ConfigurationError("pass either a Dask scheduler address or client=, not both")
        if n_workers is not None and n_workers < 1:
            raise ConfigurationError(f"n_workers must be >= 1, got {n_workers}")
        if connect_timeout <= 0:
            raise ConfigurationError(f"connect_timeout must be > 0 seconds, got {connect_timeout}")
        resolved = scheduler_address(address) if address is not None else None
        self._dask_adapter = _DaskAdapter(resolved, client, n_workers, connect_timeout)
        super().__init__(self._dask_adapter, batch_size)

    @property
    def address(self) -> str | None:
        """The scheduler address (known after :meth:`open` when a client was given)."""
        return self._dask_adapter.address

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` in use (after :meth:`open`)."""
        return self._dask_adapter.client

    def open_scoring(self, pipeline: Any) -> Scorer:
        """Score ``pipeline`` on this cluster's workers (the pipeline is scattered to every
        worker once; each worker process keeps one copy per run)."""
        from ._remote_scoring import RemoteScorer

        self.open()
        return RemoteScorer(self._dask_adapter, self.workers, pipeline)
