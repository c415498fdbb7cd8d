"""Hooks themis adds to pytest, for your ``conftest.py`` (registered by ``pytest_addhooks``).

Both are called on the controller only (once per cell and once per run, also under
pytest-xdist), with the same JSON-able values a serial run and a distributed run produce,
so an implementation can upload them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def pytest_themis_cell_finished(cell: str, report: Mapping[str, Any]) -> None:
    """A cell finished: ``cell`` is its id, ``report`` its summary.

    ``report`` holds ``experiment``, ``cell_id``, ``primary_metric``, ``metrics`` (name ->
    ``mean``, ``ci_low``, ``ci_high``, ``count``), ``total``, ``cached``, ``generated``,
    ``errors``, ``extraction_failures``, ``tokens``, ``cost``, ``duration``, ``incomplete`` and
    the cell's ``manifest`` part.
    """


def pytest_themis_session_finished(manifest: Mapping[str, Any]) -> None:
    """The run finished and its manifest (the content of ``manifest.json``) was written."""
