"""Fixtures of the reliability tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def _heavy_modules_preloaded() -> None:
    """Import ``datasets`` and ``litellm`` once, before any pytester snapshot of ``sys.modules``.

    pytester restores ``sys.modules`` and ``sys.meta_path`` after each in-process run. numpy
    cannot be imported twice in one process, and litellm imports the ``importlib_metadata``
    backport, which deletes the standard library's distribution finder and installs its own:
    imported inside a pytester run, the restore drops the backport's finder and leaves no way to
    find entry points, so later in-process runs start without the themis plugin.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import datasets  # noqa: F401
    import litellm  # noqa: F401


@pytest.fixture
def door(
    _heavy_modules_preloaded: None, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    """A pytester dir for in-process runs of the pytest door (offline litellm and Hub)."""
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    return pytester
