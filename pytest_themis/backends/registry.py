"""Execution backends by name: ``evaluate(execution_backend="threads")``.

Names come from the ``themis_register_backends`` extension hook (the built-ins below and
installed plugins such as a Ray or Dask pack); each maps to a factory returning an
``ExecutionBackend`` (or a ``"package.module:attribute"`` string naming one).
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ConfigurationError
from ..hookspecs import hookimpl
from .execution import ExecutionBackend

__all__ = ["get_execution_backend", "list_execution_backends"]


@hookimpl
def themis_register_backends() -> dict[str, str]:
    """The built-in execution backends, registered through the extension hook."""
    return {
        "threads": "pytest_themis.backends.execution:LocalExecutionBackend",
        "sequential": "pytest_themis.backends.execution:SequentialExecutionBackend",
    }


def _registered() -> dict[str, Any]:
    from ..extensions import registered  # deferred: extensions registers this module

    return registered("backends")


def list_execution_backends() -> list[str]:
    """Names :func:`get_execution_backend` accepts, sorted."""
    return sorted(_registered())


def get_execution_backend(name: str, **options: Any) -> ExecutionBackend:
    """A new backend registered as ``name``, built with ``options``."""
    factory = _registered().get(name)
    if factory is None:
        raise ConfigurationError(
            f"unknown execution backend {name!r}; available: "
            f"{', '.join(list_execution_backends())} (plugins add more through the "
            "themis_register_backends hook)"
        )
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        factory = getattr(importlib.import_module(module), attr)
    backend = factory(**options)
    if not isinstance(backend, ExecutionBackend):
        raise ConfigurationError(
            f"execution backend {name!r} built a {type(backend).__name__}, not an ExecutionBackend"
        )
    return backend
