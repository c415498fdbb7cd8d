"""Ctrl-C: make the rest of an interrupted run (report, table, manifest, exit) cheap.

By the time pytest hears of the ``KeyboardInterrupt`` the requests in flight are already
cancelled (closing the generation stream cancels them). What is left costs time only because of
the size of the heap: with litellm imported a process holds ~380,000 objects in ~3,000 modules,
so every full garbage collection takes ~0.2 s and pytest runs several on the way out (one in its
unraisable-exception check, more at interpreter exit), and formatting the interrupt's traceback
reads the source of every frame. :func:`settle_interrupt` moves every live object out of the
collector's reach (:func:`gc.freeze`: the process is ending, and reference counting still frees
what is dropped) and keeps only the traceback entry pytest prints, unless ``--full-trace`` asks
for all of them.
"""

from __future__ import annotations

import gc
from typing import Any

import pytest

__all__ = ["settle_interrupt"]


def settle_interrupt(config: pytest.Config, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """Prepare a themis run that got Ctrl-C for a fast exit (see the module docstring)."""
    gc.freeze()
    if config.option.fulltrace or not isinstance(excinfo.value, KeyboardInterrupt):
        return
    # Without --full-trace pytest prints only the crash line: the last entry not hidden.
    traceback: Any = excinfo.traceback
    for index in range(len(traceback) - 1, 0, -1):
        if not traceback[index].ishidden(excinfo):
            excinfo.traceback = traceback[index:]
            return
