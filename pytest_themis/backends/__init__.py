"""Pluggable infrastructure: where tasks execute and where results are stored.

Engines in extras (``ray``, ``dask``) are imported only when named, e.g. through
:func:`resolve_execution_backend`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .execution import (
    ExecutionBackend,
    ExecutionJob,
    LocalExecutionBackend,
    SequentialExecutionBackend,
)
from .local import InProcessExecutionBackend, WorkerProcessExecutionBackend
from .storage import StorageBackend

if TYPE_CHECKING:
    from .dask import DaskExecutionBackend
    from .ray import RayExecutionBackend

__all__ = [
    "DaskExecutionBackend",
    "ExecutionBackend",
    "ExecutionJob",
    "InProcessExecutionBackend",
    "LocalExecutionBackend",
    "RayExecutionBackend",
    "SequentialExecutionBackend",
    "StorageBackend",
    "WorkerProcessExecutionBackend",
    "resolve_execution_backend",
]


def resolve_execution_backend(spec: str | ExecutionBackend | None) -> ExecutionBackend | None:
    """The backend named by ``spec`` (None: the runner's default engine, which picks
    :class:`InProcessExecutionBackend` or :class:`WorkerProcessExecutionBackend` per run).

    ``"ray"`` starts a local Ray instance; ``"ray://host:port"`` (Ray client) and
    ``"ray:host:port"`` (a head node's address) join a cluster; ``"dask://host:port"``
    connects to a Dask scheduler; ``"local"`` is the default engine (this machine's event
    loop and worker processes). Other names are looked up in the backend registry
    (``"threads"``, ``"sequential"``, plugins'). A wrong name is a ``ConfigurationError``.
    """
    if spec is None or isinstance(spec, ExecutionBackend):
        return spec
    if not isinstance(spec, str):
        from ..errors import ConfigurationError

        raise ConfigurationError(
            f"execution_backend must be a name or an ExecutionBackend, got {type(spec).__name__}"
        )
    name = spec.strip()
    if name in ("local", "default"):
        return None  # this machine: the event loop, plus worker processes when they pay
    if name == "ray" or name.startswith(("ray://", "ray:")):
        from .ray import RayExecutionBackend

        if name == "ray":
            return RayExecutionBackend()
        address = name if name.startswith("ray://") else name[len("ray:") :]
        return RayExecutionBackend(address=address)
    if name.startswith("dask://"):
        from .dask import DaskExecutionBackend  # imports dask only when it runs

        backend: ExecutionBackend = DaskExecutionBackend(address=name)
        return backend
    from .registry import get_execution_backend, list_execution_backends

    if name not in list_execution_backends():
        from ..errors import ConfigurationError

        raise ConfigurationError(
            f"unknown execution backend {name!r}; use local (the default), ray, ray://host:port, "
            f"dask://host:port or one of: {', '.join(list_execution_backends())}"
        )
    return get_execution_backend(name)


def __getattr__(name: str) -> Any:
    # Lazily, so a plain import never imports ray or dask (the modules import them lazily too).
    if name == "RayExecutionBackend":
        from .ray import RayExecutionBackend

        return RayExecutionBackend
    if name == "DaskExecutionBackend":
        from .dask import DaskExecutionBackend

        return DaskExecutionBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
