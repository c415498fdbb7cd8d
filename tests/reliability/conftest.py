"""Fixtures of the reliability tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def _datasets_preloaded() -> None:
    """Import ``datasets`` (and numpy) once, before any pytester snapshot of ``sys.modules``.

    pytester restores ``sys.modules`` after each test and numpy cannot be imported twice in one
    process; being session-scoped, this runs before the first pytester fixture takes its snapshot.
    """
    import datasets  # noqa: F401


@pytest.fixture
def door(
    _datasets_preloaded: None, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    """A pytester dir for in-process runs of the pytest door (offline litellm and Hub)."""
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    return pytester
