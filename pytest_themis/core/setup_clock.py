"""Seconds this process spent setting providers up (importing their client libraries).

A run's reported time leaves this out: importing litellm takes seconds, and a table whose "time"
column includes it misstates how long the evaluation took. Providers wrap their one-off set-up in
:func:`setup_phase`; the orchestrator subtracts what accrued during its run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["setup_phase", "setup_seconds"]

_lock = threading.Lock()
_total = 0.0


@contextmanager
def setup_phase() -> Iterator[None]:
    """Count the time inside the block as provider set-up."""
    global _total
    started = time.perf_counter()
    try:
        yield
    finally:
        spent = time.perf_counter() - started
        with _lock:
            _total += spent


def setup_seconds() -> float:
    """Provider set-up seconds accrued in this process so far."""
    with _lock:
        return _total
