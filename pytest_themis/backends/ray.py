"""Ray execution: long-lived actors, each one generation kernel on one event loop.

``RayExecutionBackend()`` starts a local Ray instance; ``address="auto"``, ``"host:port"`` or
``"ray://host:port"`` joins a running cluster. Each actor imports its provider libraries once and
serves batches through :func:`~pytest_themis.backends._remote.run_task_batch`; the shared
dispatcher keeps the window, streams records back and resubmits a dead actor's batch (the actor
is replaced). Install with ``pip install "pytest-themis[ray]"``.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from typing import Any

from ..core.entities import GenerationTask
from ..errors import ConfigurationError
from ..generation.settings import BatchResult
from ._remote import RemoteExecutionBackend, WorkerJob, WorkerLost, cancel_run, run_task_batch
from .scoring import Scorer

__all__ = ["RayExecutionBackend"]

_INSTALL = 'pip install "pytest-themis[ray]"'
#: Batches one actor runs at once (its threads submit them to the actor's one event loop).
_ACTOR_CONCURRENCY = 32


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigurationError(
            f"the Ray execution backend needs ray, which is not installed: {_INSTALL}"
        ) from None
    return ray


class BatchWorker:
    """The actor's class: one per actor process; batches go to this process's kernel."""

    def ping(self) -> bool:
        return True

    def run(self, job: WorkerJob, batch: list[GenerationTask]) -> BatchResult:
        return run_task_batch(job, batch)

    def cancel(self, job_id: str) -> None:
        cancel_run(job_id)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in this actor's process (scoring batches, closing a run's pipeline)."""
        return fn(*args)


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of an explicit address, or None for ``"auto"``."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return None
    return host or "127.0.0.1", int(port)


def _check_reachable(address: str) -> None:
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=3):
            pass
    except OSError as exc:
        raise ConfigurationError(
            f"cannot reach the Ray cluster at {address!r} ({exc.strerror or exc}); start it with "
            "`ray start --head` or pass the address it prints"
        ) from None


class _RayAdapter:
    """:class:`~pytest_themis.backends._remote.EngineAdapter` for Ray actors."""

    def __init__(
        self,
        address: str | None,
        num_cpus: int | None,
        actors: int | None,
        init_kwargs: dict[str, Any] | None,
    ) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.actors_wanted = actors
        self.init_kwargs = dict(init_kwargs or {})
        self._ray: Any = None
        self._owns_ray = False
        self._actor_class: Any = None
        self._actors: list[Any] = []
        self._load: list[int] = []
        self._slot_of: dict[Any, tuple[int, Any]] = {}

    def start(self) -> int:
        if self._actors:
            return len(self._actors)
        ray = self._ray = _import_ray()
        if self.address:
            _check_reachable(self.address)
        if not ray.is_initialized():
            self._init(ray)
        count = self.actors_wanted or max(1, int(ray.cluster_resources().get("CPU", 1)))
        cpus = float(ray.cluster_resources().get("CPU", count))
        per_actor = min(1.0, cpus / count) if cpus else 0.0
        self._actor_class = ray.remote(BatchWorker).options(
            num_cpus=per_actor, max_concurrency=_ACTOR_CONCURRENCY
        )
        self._actors = [self._actor_class.remote() for _ in range(count)]
        self._load = [0] * count
        ray.get([actor.ping.remote() for actor in self._actors])
        return count

    def _init(self, ray: Any) -> None:
        kwargs: dict[str, Any] = {
            "logging_level": logging.WARNING,
            "log_to_driver": False,
            "configure_logging": True,
        }
        if self.address:
            kwargs["address"] = self.address
        else:
            kwargs["num_cpus"] = self.num_cpus
            kwargs["include_dashboard"] = False
        kwargs.update(self.init_kwargs)
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            where = f"at {self.address!r}" if self.address else "locally"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigurationError(
                f"cannot start or join the Ray cluster {where}: {first}; check the address "
                "(`ray status` on the head node prints it)"
            ) from None
        self._owns_ray = True

    def submit(self, job: WorkerJob, batch: list[GenerationTask]) -> Any:
        slot = min(range(len(self._actors)), key=self._load.__getitem__)
        handle = self._actors[slot].run.remote(job, batch)
        self._load[slot] += 1
        self._slot_of[handle] = (slot, self._actors[slot])
        return handle

    def submit_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Start ``fn(*args)`` on the least loaded actor (object refs arrive as values)."""
        slot = min(range(len(self._actors)), key=self._load.__getitem__)
        handle = self._actors[slot].call.remote(fn, *args)
        self._load[slot] += 1
        self._slot_of[handle] = (slot, self._actors[slot])
        return handle

    def ship(self, obj: Any) -> Any:
        return self._ray.put(obj)

    def release(self, shipped: Any) -> None:
        del shipped  # the object store frees it once no reference is left

    def run_everywhere(self, fn: Callable[..., Any], *args: Any) -> None:
        ray = self._ray
        for ref in [actor.call.remote(fn, *args) for actor in self._actors]:
            try:
                ray.get(ref)
            except Exception:  # noqa: BLE001, S110 - a dead actor has nothing left to close
                pass

    def wait_any(self, handles: Sequence[Any], timeout: float | None) -> list[Any]:
        ray = self._ray
        ready, rest = ray.wait(list(handles), num_returns=1, timeout=timeout)
        if ready and rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        return list(ready)

    def result(self, handle: Any) -> BatchResult:
        ray = self._ray
        slot, actor = self._slot_of.pop(handle)
        self._load[slot] -= 1
        try:
            result: BatchResult = ray.get(handle)
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
            self._replace(slot, actor)
            raise WorkerLost(str(exc).splitlines()[0] if str(exc) else "actor died") from exc
        return result

    def cancel(self, job_id: str, handles: Sequence[Any]) -> None:
        # ray.cancel keeps a queued batch from starting but does not stop one running on a
        # threaded actor, so each actor also cancels the run's requests (on a thread of its own).
        ray = self._ray
        for handle in handles:
            slot, _ = self._slot_of.pop(handle, (None, None))
            if slot is not None:
                self._load[slot] -= 1
            ray.cancel(handle)
        for actor in self._actors:
            actor.cancel.remote(job_id)

    def _replace(self, slot: int, dead: Any) -> None:
        """A fresh actor in ``slot``, unless another failed batch of ``dead`` did it already."""
        if self._actors[slot] is dead:
            self._actors[slot] = self._actor_class.remote()

    def shutdown(self) -> None:
        ray = self._ray
        if ray is None:
            return
        for actor in self._actors:
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001, S110 - already gone
                pass
        self._actors = []
        self._slot_of.clear()
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
        self._owns_ray = False

    @property
    def actors(self) -> list[Any]:
        return list(self._actors)

    def describe(self) -> dict[str, Any]:
        return {
            "engine": "ray",
            "address": self.address or "local",
            "actors": len(self._actors) or self.actors_wanted,
        }


class RayExecutionBackend(RemoteExecutionBackend):
    """Generation on Ray actors (``pip install "pytest-themis[ray]"``).

    ``address``: None starts a local Ray instance (with ``num_cpus``); ``"auto"``,
    ``"host:port"`` or ``"ray://host:port"`` joins a running cluster. ``actors`` defaults to one
    per CPU of the cluster; ``batch_size`` to about two batches in flight per actor;
    ``init_kwargs`` go to ``ray.init``. An unreachable cluster or a missing ``ray`` is a
    :class:`~pytest_themis.errors.ConfigurationError` from :meth:`open`, before any request.
    """

    def __init__(
        self,
        address: str | None = None,
        num_cpus: int | None = None,
        actors: int | None = None,
        batch_size: int | None = None,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if actors is not None and actors < 1:
            raise ConfigurationError(f"actors must be >= 1, got {actors}")
        if num_cpus is not None and num_cpus < 1:
            raise ConfigurationError(f"num_cpus must be >= 1, got {num_cpus}")
        self._ray_adapter = _RayAdapter(address, num_cpus, actors, init_kwargs)
        super().__init__(self._ray_adapter, batch_size)
        self.address = address

    @property
    def actors(self) -> list[Any]:
        """Handles of the live actors (after :meth:`open`)."""
        return self._ray_adapter.actors

    def open_scoring(self, pipeline: Any) -> Scorer:
        """Score ``pipeline`` on this backend's actors (the pipeline is put in the object store
        once; each actor keeps one copy per run)."""
        from ._remote_scoring import RemoteScorer

        self.open()
        return RemoteScorer(self._ray_adapter, self.workers, pipeline)
