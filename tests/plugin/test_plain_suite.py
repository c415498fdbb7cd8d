"""With the plugin installed, a suite that does not use themis pays (almost) nothing."""

from __future__ import annotations

import json

import pytest
from support.recording import imported_modules, record_imports

pytestmark = pytest.mark.timeout(120)

#: Exactly what a run that does not use themis imports of ours: the entry point, the option
#: table and the hook specs (plus their packages). Option parsing, the run state and the engine
#: load on first use.
PLAIN_RUN_MODULES = {
    "pytest_themis",
    "pytest_themis.plugin",
    "pytest_themis._pytest",
    "pytest_themis._pytest.flags",
    # the specs of themis' pytest hooks, which conftest files may implement (no imports)
    "pytest_themis._pytest.newhooks",
}


def test_plain_suite_imports_no_engine_and_creates_nothing(pytester: pytest.Pytester) -> None:
    record_imports(
        pytester,
        ("litellm", "datasets", "math_verify", "sympy", "diskcache", "pytest_themis", "ray",
         "dask", "distributed", "psycopg", "boto3", "s3fs", "aiohttp"),
    )  # fmt: skip
    pytester.makepyfile(
        "import pytest\n\n"
        "@pytest.mark.parametrize('n', range(5))\n"
        "def test_plain(n):\n    assert n >= 0\n"
    )
    before = sorted(p.name for p in pytester.path.iterdir())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=5)
    imported = set(imported_modules(pytester))
    assert imported == PLAIN_RUN_MODULES, sorted(imported ^ PLAIN_RUN_MODULES)
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


PUBLIC_FIXTURES = (
    "themis_cell",
    "themis_dataset",
    "themis_execution_backend",
    "themis_extractor",
    "themis_metrics",
    "themis_pipeline",
    "themis_report",
    "themis_sample",
    "themis_storage",
)


def test_fixtures_and_marker_are_listed_without_using_themis(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    fixtures = pytester.runpytest("-p", "no:cacheprovider", "--fixtures")
    assert fixtures.ret == pytest.ExitCode.OK
    out = fixtures.stdout.str()
    for name in PUBLIC_FIXTURES:
        assert f"\n{name}" in out, name
    fixtures.stdout.fnmatch_lines(["*themis_report*", "*The cell's EvaluationReport*"])
    markers = pytester.runpytest("-p", "no:cacheprovider", "--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.themis(dataset=*per model x prompt x sampling*"])


def test_a_themis_flag_on_a_plain_suite_checks_options_but_loads_no_engine(
    pytester: pytest.Pytester,
) -> None:
    record_imports(pytester, ["pytest_themis"])
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--themis-limit=3")
    result.assert_outcomes(passed=1)
    imported = set(imported_modules(pytester))
    option_parsing = {
        "pytest_themis._pytest.options",
        "pytest_themis._pytest.state",
        # the shared defaults (cache folder and modes): constants, no imports
        "pytest_themis.core",
        "pytest_themis.core.defaults",
    }
    assert imported == PLAIN_RUN_MODULES | option_parsing, sorted(imported)
    assert not (pytester.path / ".themis_cache").exists()


def test_marker_test_runs_without_any_themis_option(pytester: pytest.Pytester) -> None:
    """No flag and no ini key: themis starts when collection meets the first marked test."""
    pytester.makepyfile(
        """
        import pytest

        def test_plain():
            pass

        @pytest.mark.themis(dataset=[{"id": "r1", "q": "2+2", "a": "4"}], prompts="{q}",
                            models="fake:fake-oracle", reference_field="a",
                            metrics=["exact_match"])
        def test_eval(themis_report):
            assert themis_report.metrics["ExactMatch"].mean == 1.0
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*themis*", "*ExactMatch 1.000*", "themis manifest: *"])
    manifest = json.loads((pytester.path / ".themis_cache" / "manifest.json").read_text())
    assert len(manifest["cells"]) == 1
