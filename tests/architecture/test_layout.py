"""Test modules are imported by basename (rootdir imports, no packages): names must be unique."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


def test_every_test_module_basename_is_unique() -> None:
    names = Counter(
        p.name for p in TESTS.rglob("*.py") if p.name not in ("__init__.py", "conftest.py")
    )
    assert [name for name, count in names.items() if count > 1] == []
