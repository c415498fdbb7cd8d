"""Live progress of a running cell on the pytest terminal.

On a terminal one line is rewritten in place; otherwise a plain line is printed every
``interval`` seconds. Lines go through pytest's terminal reporter, so they show under output
capture and in CI logs. Nothing is shown with ``-q -q`` or when the cell finishes before
``delay``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from . import is_xdist_worker

__all__ = ["CellProgress", "format_progress"]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_progress(label: str, event: Any) -> str:
    """``themis <label>: 120/500 cached 40 errors 0 | 12.3/s | ETA 31s``."""
    rate = event.done / event.elapsed if event.elapsed > 0 else 0.0
    fresh = event.done - event.cached
    eta = (event.total - event.done) / (fresh / event.elapsed) if fresh > 0 else None
    if event.done >= event.total:
        eta = 0.0
    return (
        f"themis {label}: {event.done}/{event.total} cached {event.cached} "
        f"errors {event.errors} | {rate:.1f}/s | ETA {_duration(eta)}"
    )


class CellProgress:
    """Callable given to ``ExperimentOrchestrator.run(progress=...)``."""

    def __init__(
        self,
        terminal: Any,
        label: str,
        *,
        delay: float = 1.0,
        interval: float = 5.0,
    ) -> None:
        self.terminal = terminal
        self.label = label
        self.delay = delay
        self.interval = interval
        self.isatty = bool(terminal is not None and getattr(terminal, "isatty", False))
        self._started = time.monotonic()
        self._last_line = 0.0
        self._shown = False
        self._open = False
        self._lock = threading.Lock()

    @classmethod
    def for_config(cls, config: Any, label: str) -> CellProgress | None:
        """None when progress must stay silent (``-q -q``, no terminal reporter, xdist worker)."""
        if config.get_verbosity() <= -2 or is_xdist_worker(config):
            return None
        terminal = config.pluginmanager.get_plugin("terminalreporter")
        if terminal is None:
            return None
        return cls(terminal, label)

    def __call__(self, event: Any) -> None:
        with self._lock:
            now = time.monotonic()
            finished = event.done >= event.total
            if not self._shown and now - self._started < self.delay:
                return
            line = format_progress(self.label, event)
            if self.isatty:
                if not self._shown:
                    self.terminal.ensure_newline()
                self.terminal.rewrite(line, erase=True)
                self._open = not finished
                if finished:
                    self.terminal.write("\n")
                self._shown = True
            elif finished or not self._shown or now - self._last_line >= self.interval:
                self.terminal.write_line(line)
                self._last_line = now
                self._shown = True

    def close(self) -> None:
        """Leave the cursor on a fresh line if a rewritten line is still open."""
        with self._lock:
            if self._open:
                self.terminal.write("\n")
                self._open = False
