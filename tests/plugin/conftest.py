"""Fixtures of the plugin's pytester tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_support import COUNTING_MODEL


@pytest.fixture
def call_log(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Write the counting model module into the pytester dir; return its call log path."""
    pytester.makepyfile(countmodel=COUNTING_MODEL)
    pytester.syspathinsert()
    log = pytester.path / "calls.log"
    log.write_text("")
    monkeypatch.setenv("THEMIS_TEST_CALL_LOG", str(log))
    return log


@pytest.fixture(scope="session")
def preloaded_datasets() -> None:
    """Import ``datasets`` (and numpy) in this process before in-process pytester runs.

    pytester restores ``sys.modules`` after each in-process run, and numpy cannot be imported
    twice in one process; importing it up front keeps it out of the restored snapshot.
    """
    import datasets  # noqa: F401
