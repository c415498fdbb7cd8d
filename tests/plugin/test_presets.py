"""``--themis-preset``: synthesized items, summary table, manifest, gates and JUnit properties."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from plugin_support import base_args, read_manifest

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("preloaded_datasets")]


def test_demo_preset_runs_without_test_files(pytester: pytest.Pytester) -> None:
    from pytest_themis.experiment.manifest import validate_manifest

    manifest = pytester.path / "out" / "manifest.json"
    result = pytester.runpytest(
        *base_args(pytester), "--themis-preset=demo", f"--themis-manifest={manifest}"
    )
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "collected 1 item",
            "*themis*",
            "cell*metrics (95% CI)*n*cached*errors*tokens*cost*time*",
            # 41 of 50: computed without the extractor in tests/trust/test_gates_and_exit_codes.py
            "demo",  # the experiment heads its cells' rows
            "  fake-math-llm-demo-cot-t0*",
            "*NumericMatch 0.820 [[]0.692, 0.902[]]* 50 *",
            f"themis manifest: {manifest}",
        ]
    )
    data = read_manifest(manifest)
    validate_manifest(data)
    assert [c["cell_id"] for c in data["cells"]] == ["fake-math-llm-demo-cot-t0"]
    assert data["cells"][0]["counts"]["total"] == 50


def test_default_manifest_lives_in_the_cache_dir(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*base_args(pytester), "--themis-preset=demo", "--themis-limit=5")
    result.assert_outcomes(passed=1)
    data = read_manifest(pytester.path / "cache" / "manifest.json")
    assert data["cells"][0]["counts"]["total"] == 5


def test_fail_under_fails_the_preset_item(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        *base_args(pytester), "--themis-preset=demo", "--themis-fail-under=0.99"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*--themis-fail-under NumericMatch=0.99 (point) failed*", "*is not >= 0.99*"]
    )


def test_fail_under_unknown_metric_names_the_available_ones(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        *base_args(pytester), "--themis-preset=demo", "--themis-fail-under=Bleu=0.1"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # found before any request
    result.stderr.fnmatch_lines(["*no metric 'Bleu' in this evaluation; available: NumericMatch*"])


def test_model_flag_and_k_select_preset_cells(pytester: pytest.Pytester) -> None:
    args = [*base_args(pytester), "--themis-preset=demo", "--themis-limit=4"]
    args += ["--themis-model=fake:fake-oracle", "--themis-model=fake:other"]
    result = pytester.runpytest(*args, "-k", "oracle", "-v")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["themis-preset::demo[[]fake-oracle-demo-cot-t0[]] PASSED*"])


def test_junitxml_carries_metrics_as_properties(pytester: pytest.Pytester) -> None:
    xml = pytester.path / "junit.xml"
    result = pytester.runpytest(
        *base_args(pytester), "--themis-preset=demo", "--themis-limit=10", f"--junitxml={xml}"
    )
    result.assert_outcomes(passed=1)
    props = {p.get("name"): p.get("value") for p in ET.parse(xml).iter("property")}
    assert props["themis_cell"] == "fake-math-llm-demo-cot-t0"
    assert 0.0 <= float(props["themis_NumericMatch"]) <= 1.0
    assert props["themis_NumericMatch_n"] == "10"
    assert float(props["themis_NumericMatch_ci_low"]) <= float(props["themis_NumericMatch"])
    assert "themis_result" not in props


def test_quiet_run_prints_no_progress(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*base_args(pytester), "--themis-preset=demo", "-q")
    result.assert_outcomes(passed=1)
    assert "themis demo[" not in result.stdout.str()
