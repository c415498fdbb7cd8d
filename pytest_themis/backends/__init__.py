"""Pluggable infrastructure: where tasks execute and where results are stored."""

from .execution import ExecutionBackend, LocalExecutionBackend, SequentialExecutionBackend
from .storage import StorageBackend

__all__ = [
    "ExecutionBackend",
    "LocalExecutionBackend",
    "SequentialExecutionBackend",
    "StorageBackend",
]
