"""With the plugin installed, a suite that does not use themis pays (almost) nothing."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.timeout(120)

ALLOWED = {
    "pytest_themis",
    "pytest_themis.plugin",
    "pytest_themis._pytest",
    "pytest_themis._pytest.options",
}


def test_plain_suite_imports_no_engine_and_creates_nothing(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import json
        import sys

        def pytest_sessionfinish(session):
            heavy = sorted(
                name for name in sys.modules
                if name.split(".")[0] in ("litellm", "datasets", "math_verify", "sympy",
                                          "diskcache", "pytest_themis")
            )
            with open("modules.json", "w") as fh:
                json.dump(heavy, fh)
        """
    )
    pytester.makepyfile(
        "import pytest\n\n"
        "@pytest.mark.parametrize('n', range(5))\n"
        "def test_plain(n):\n    assert n >= 0\n"
    )
    before = sorted(p.name for p in pytester.path.iterdir())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=5)
    imported = set(json.loads((pytester.path / "modules.json").read_text()))
    assert "pytest_themis.plugin" in imported  # the plugin really was loaded
    assert imported <= ALLOWED, sorted(imported - ALLOWED)
    after = sorted(
        p.name
        for p in pytester.path.iterdir()
        # pytester's own files: subprocess output and base temp folders
        if p.name not in ("modules.json", "stdout", "stderr") and not p.name.startswith("runpytest")
    )
    assert after == before
    printed = [line for line in result.outlines if not line.startswith("plugins:")]
    assert not [line for line in printed if "themis" in line.lower()]


def test_plugin_is_registered_under_the_themis_name(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_registered(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("themis")
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    disabled = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:themis")
    disabled.assert_outcomes(failed=1)
