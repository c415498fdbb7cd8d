"""What a pytest run under ``pytester`` imported, and which child processes it still had.

:func:`record_imports` adds a conftest that writes both down at session end, in the run's own
process; read them back with :func:`imported_modules`, :func:`imported_packages` and
:func:`child_pids` after the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import pytest

_MODULES = "modules.json"
_CHILDREN = "children.json"

_CONFTEST = """
import glob
import json
import sys

PACKAGES = {packages!r}


def pytest_sessionfinish(session):
    names = sorted(name for name in sys.modules if name.split(".")[0] in PACKAGES)
    with open({modules!r}, "w") as fh:
        json.dump(names, fh)
    if {children!r}:
        pids = []
        for path in glob.glob("/proc/self/task/*/children"):
            with open(path) as fh:
                pids += fh.read().split()
        with open({children_file!r}, "w") as fh:
            json.dump(pids, fh)
"""


def record_imports(
    pytester: pytest.Pytester, packages: Iterable[str], *, children: bool = False
) -> None:
    """Make the runs of ``pytester`` record the modules they imported from ``packages`` (top-level
    names) and, with ``children``, the pids of the child processes left at session end."""
    pytester.makeconftest(
        _CONFTEST.format(
            packages=sorted(set(packages)),
            modules=_MODULES,
            children=children,
            children_file=_CHILDREN,
        )
    )


def imported_modules(pytester: pytest.Pytester) -> list[str]:
    """The recorded modules of the last run, sorted."""
    names: list[str] = json.loads((pytester.path / _MODULES).read_text())
    return names


def imported_packages(pytester: pytest.Pytester) -> set[str]:
    """The top-level packages of :func:`imported_modules`."""
    return {name.split(".")[0] for name in imported_modules(pytester)}


def child_pids(pytester: pytest.Pytester) -> list[str]:
    """The child processes the last run still had at session end."""
    pids: list[str] = json.loads((pytester.path / _CHILDREN).read_text())
    return pids
