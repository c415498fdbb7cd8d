"""Fixtures for engine tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def rows() -> list[dict[str, object]]:
    # Every fifth reference is wrong on purpose, so accuracy is exactly 0.8.
    return [
        {"id": f"r{i}", "q": f"{i}+{i}", "gold": str(2 * i if i % 5 else -1)} for i in range(50)
    ]
