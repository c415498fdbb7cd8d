"""``--themis-score-on-engine`` (ini ``themis_score_on_engine``): refused before any request
without a Ray/Dask engine (the run on a cluster is in tests/backends/test_engine_scoring.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(180)

CONFTEST = """
from pathlib import Path

from pytest_themis.backends import LocalExecutionBackend
from pytest_themis.extensions import plugin_manager
from pytest_themis.hookspecs import hookimpl

LOG = Path(__file__).with_name("backend.log")


class Recording(LocalExecutionBackend):
    def map_unordered(self, fn, items, *, max_in_flight):
        with LOG.open("a") as handle:
            handle.write("run\\n")
        yield from super().map_unordered(fn, items, max_in_flight=max_in_flight)


class Pack:
    @hookimpl
    def themis_register_backends(self):
        return {"recording": Recording}


plugin_manager().register(Pack(), name="recording-pack")
"""

RUN = ("-p", "no:cacheprovider", "--themis-preset=demo", "--themis-limit=3")


@pytest.mark.parametrize(
    ("args", "ini", "engine"),
    [
        (["--themis-score-on-engine"], "", "the default engine"),
        (["--themis-score-on-engine", "--themis-backend=recording"], "", "Recording"),
        ([], "themis_score_on_engine = true\nthemis_backend = recording\n", "Recording"),
    ],
)
def test_without_a_cluster_engine_it_is_a_usage_error_before_any_request(
    pytester: pytest.Pytester, args: list[str], ini: str, engine: str
) -> None:
    pytester.makeconftest(CONFTEST)
    if ini:
        pytester.makeini("[pytest]\n" + ini)
    result = pytester.runpytest_subprocess(*RUN, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    lines = [ln for ln in result.stderr.lines if "score-on-engine" in ln]
    assert len(lines) == 1, result.stderr.str()
    assert f"needs a Ray or Dask execution backend, but the run uses {engine}" in lines[0]
    assert "--themis-backend" in lines[0]  # names the fix
    assert not (pytester.path / "backend.log").exists()  # no request was sent
    assert "Traceback" not in result.stderr.str()


def test_a_bad_ini_value_names_the_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nthemis_score_on_engine = maybe\n")
    result = pytester.runpytest_subprocess(*RUN)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini option themis_score_on_engine expects true or false*"])
