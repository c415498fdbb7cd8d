"""Shared test setup: offline litellm and a fault-injecting OpenAI-compatible server."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# litellm must never fetch its model price map from the network during tests.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs inside tests must not append their Markdown summary to the CI job's own summary."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def openai_server() -> Iterator[object]:
    """A running :class:`~pytest_themis.testing.OpenAIServer` (no faults; use ``set_plan``)."""
    from pytest_themis.testing import OpenAIServer

    with OpenAIServer() as server:
        yield server
