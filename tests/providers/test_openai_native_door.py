"""The client choice through the pytest door: ``--themis-client`` / ini ``themis_client``."""

from __future__ import annotations

import os

import pytest
from support.recording import imported_modules, imported_packages, record_imports

from pytest_themis.testing import OpenAIServer

pytestmark = pytest.mark.timeout(300)

#: The client libraries whose import the tests watch.
CLIENTS = ("litellm", "aiohttp", "openai", "httpx")
#: The litellm provider's module: a native-routed run must not import it either.
LITELLM_PROVIDER = "pytest_themis.providers.litellm_provider"

TEST_FILE = """
import pytest

ROWS = [{{"id": i, "q": "item %d\\nEXPECTED: %d" % (i, i), "gold": i}} for i in range({n})]


@pytest.mark.themis(
    dataset=ROWS,
    prompts={{"ask": "{{q}}"}},
    models={models!r},
    reference_field="gold",
    metrics=["exact_match"],
    extractor="gsm8k",
)
def test_eval(themis_report):
    assert themis_report.total == {n}
    assert themis_report.metrics["ExactMatch"].mean == 1.0
"""


def _setup(pytester: pytest.Pytester, n: int, models: list[str]) -> None:
    record_imports(pytester, (*CLIENTS, "pytest_themis"))
    pytester.makepyfile(TEST_FILE.format(n=n, models=models))


def _run(pytester: pytest.Pytester, url: str, *args: str) -> pytest.RunResult:
    os.environ.pop("THEMIS_CLIENT", None)
    return pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        f"--themis-cache-dir={pytester.path / 'cache'}",
        f"--themis-api-base={url}",
        "--themis-max-parallel=32",
        *args,
    )


def _modules(pytester: pytest.Pytester) -> dict[str, bool]:
    seen = imported_packages(pytester)
    found = {name: name in seen for name in CLIENTS}
    found["litellm_provider"] = LITELLM_PROVIDER in imported_modules(pytester)
    return found


@pytest.mark.slow
def test_native_by_default_and_a_cached_rerun_imports_no_client_library(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("THEMIS_CLIENT", raising=False)
    _setup(pytester, 1000, ["openai/fake-chat"])
    with OpenAIServer() as server:
        _run(pytester, server.url).assert_outcomes(passed=1)
        assert server.stats.request_count == 1000
        first = _modules(pytester)
        server.reset_stats()
        _run(pytester, server.url).assert_outcomes(passed=1)
        assert server.stats.request_count == 0
        rerun = _modules(pytester)
    # The first run sent everything through aiohttp, in this process, without litellm (nor
    # the litellm provider's module: the model name is checked without it).
    assert first == {
        "litellm": False,
        "aiohttp": True,
        "openai": False,
        "httpx": False,
        "litellm_provider": False,
    }
    # The cached rerun imported no HTTP client at all.
    assert not any(rerun.values()), rerun


@pytest.mark.slow
def test_themis_client_litellm_sends_through_litellm(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("THEMIS_CLIENT", raising=False)
    _setup(pytester, 3, ["openai/fake-chat"])
    with OpenAIServer() as server:
        _run(pytester, server.url, "--themis-client=litellm").assert_outcomes(passed=1)
        assert server.stats.request_count == 3
    assert _modules(pytester)["litellm"]


@pytest.mark.slow
def test_ini_client_and_bad_values_are_usage_errors(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("THEMIS_CLIENT", raising=False)
    _setup(pytester, 2, ["openai/fake-chat"])
    with OpenAIServer() as server:
        bad_flag = _run(pytester, server.url, "--themis-client=httpx")
        assert bad_flag.ret == pytest.ExitCode.USAGE_ERROR
        bad_flag.stderr.fnmatch_lines(["*--themis-client expects one of auto, litellm, native*"])
        pytester.makeini("[pytest]\nthemis_client = bogus\n")
        bad_ini = _run(pytester, server.url)
        assert bad_ini.ret == pytest.ExitCode.USAGE_ERROR
        bad_ini.stderr.fnmatch_lines(["*ini option themis_client expects one of*"])
        pytester.makeini("[pytest]\nthemis_client = native\n")
        _run(pytester, server.url).assert_outcomes(passed=1)
        assert server.stats.request_count == 2
    assert _modules(pytester)["aiohttp"] and not _modules(pytester)["litellm"]


def test_native_refuses_a_model_it_cannot_serve_before_sending(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("THEMIS_CLIENT", raising=False)
    _setup(pytester, 2, ["anthropic/claude-x"])
    with OpenAIServer() as server:
        result = _run(pytester, server.url, "--themis-client=native")
        assert server.stats.request_count == 0
    result.assert_outcomes(errors=1)  # the cell fails in the item's fixture
    result.stdout.fnmatch_lines(["*client='native' cannot send requests for 'anthropic/claude-x'*"])
