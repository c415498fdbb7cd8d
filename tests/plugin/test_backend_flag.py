"""``--themis-backend``: the session builds the named engine, opens it before the first request,
runs every cell on it and shuts it down at session end."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(120)

CONFTEST = """
from pathlib import Path

from pytest_themis.backends import LocalExecutionBackend
from pytest_themis.extensions import plugin_manager
from pytest_themis.hookspecs import hookimpl

LOG = Path(__file__).with_name("backend.log")


def _log(event):
    with LOG.open("a") as handle:
        handle.write(event + "\\n")


class Recording(LocalExecutionBackend):
    def open(self):
        _log("open")

    def map_unordered(self, fn, items, *, max_in_flight):
        _log("run")
        yield from super().map_unordered(fn, items, max_in_flight=max_in_flight)

    def shutdown(self):
        _log("shutdown")
        super().shutdown()


class Pack:
    @hookimpl
    def themis_register_backends(self):
        return {"recording": Recording}


plugin_manager().register(Pack(), name="recording-pack")
"""


@pytest.mark.parametrize("where", ["flag", "ini"])
def test_named_backend_is_opened_first_used_and_shut_down_once(
    pytester: pytest.Pytester, where: str
) -> None:
    pytester.makeconftest(CONFTEST)
    if where == "ini":
        pytester.makeini("[pytest]\nthemis_backend = recording\n")
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--themis-preset=demo",
        "--themis-limit=5",
        *(["--themis-backend=recording"] if where == "flag" else []),
        f"--themis-cache-dir={pytester.path / 'cache'}",
    )
    result.assert_outcomes(passed=1)
    events = (pytester.path / "backend.log").read_text().split()
    assert events[0] == "open"  # the preflight opened it before any request
    assert "run" in events and events.count("shutdown") == 1 and events[-1] == "shutdown"


def test_local_is_the_default_engine(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--themis-preset=demo",
        "--themis-limit=5",
        "--themis-backend=local",
        f"--themis-cache-dir={pytester.path / 'cache'}",
    )
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "backend.log").exists()


def test_unknown_backend_name_is_one_usage_error_line(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--themis-preset=demo",
        "--themis-backend=nowhere",
        f"--themis-cache-dir={pytester.path / 'cache'}",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --themis-backend nowhere: unknown execution backend 'nowhere'*threads*"]
    )
