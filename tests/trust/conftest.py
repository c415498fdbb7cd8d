"""Fixtures of the trust regression tests (one per item of the first-hour user report)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="session")
def _preloaded() -> None:
    """Import ``datasets`` (numpy) before any in-process pytester run: pytester restores
    ``sys.modules`` after each run and numpy cannot be imported twice. The door runs here use
    the fake and python providers only, so litellm is not needed (and not paid for)."""
    import datasets  # noqa: F401


@pytest.fixture
def door(
    _preloaded: None, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    """A pytester dir for in-process runs of the pytest door, offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    return pytester
