"""Under xdist: one manifest written by the controller, equal to a serial run's, no duplicates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from plugin_support import base_args, calls, read_manifest

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

FAKE_SWEEP = """
import pytest

ROWS = [{"id": f"r{i}", "q": f"{i}*{i}", "a": str(i * i)} for i in range(START, START + 8)]
SWEEP = dict(dataset=ROWS, prompts={"plain": "{q}", "ask": "Compute: {q}"},
             models=["fake:fake-oracle", "fake:sloppy"], reference_field="a",
             metrics=["exact_match"])

@pytest.mark.themis(**SWEEP)
def test_a(themis_report):
    assert themis_report.total == 8

@pytest.mark.themis(**SWEEP)
def test_b(themis_report):
    assert themis_report.total == 8
"""


def test_parallel_manifest_matches_serial(pytester: pytest.Pytester) -> None:
    from pytest_themis.experiment.manifest import strip_volatile, validate_manifest

    pytester.makepyfile(test_one="START = 0\n" + FAKE_SWEEP, test_two="START = 100\n" + FAKE_SWEEP)
    manifests = {}
    for workers in ("0", "2"):
        out = pytester.path / f"manifest-{workers}.json"
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-n", workers,
            f"--themis-cache-dir={pytester.path / ('cache' + workers)}",
            f"--themis-manifest={out}", "--themis-run-id=same-run",
        )  # fmt: skip
        result.assert_outcomes(passed=16)
        manifests[workers] = read_manifest(out)
        validate_manifest(manifests[workers])
    serial, parallel = (strip_volatile(manifests[w]) for w in ("0", "2"))
    assert len(serial["cells"]) == 8  # 2 modules x 4 cells; two tests per module share cells
    assert parallel == serial


def test_no_cell_is_generated_twice_across_workers(
    pytester: pytest.Pytester, call_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    sweep = """
import pytest

ROWS = [{"id": f"r{i}", "q": f"{i}+{i}", "a": str(2 * i)} for i in range(5)]

@pytest.mark.themis(dataset=ROWS, prompts="{q}", models="python:countmodel:answer",
                    reference_field="a", metrics=["exact_match"])
def test_cell(themis_report):
    assert themis_report.metrics["ExactMatch"].mean == 1.0
"""
    pytester.makepyfile(test_w1=sweep, test_w2=sweep, test_w3=sweep, test_w4=sweep)
    result = pytester.runpytest_subprocess(*base_args(pytester), "-n", "2")
    result.assert_outcomes(passed=4)
    prompts = calls(call_log)
    assert sorted(prompts) == sorted(f"{i}+{i}" for i in range(5))
    # The cell's values follow its id on the same line, or on the next when the id is long.
    result.stdout.re_match_lines([r".*themis.*"])
    assert re.search(r"answer-prompt-t0\s+\S*\s*ExactMatch 1\.000", result.stdout.str())


def test_workers_report_to_the_controller_without_any_themis_option(
    pytester: pytest.Pytester,
) -> None:
    """No flag or ini key: the controller starts themis when it starts its first worker."""
    pytester.makepyfile(test_one="START = 0\n" + FAKE_SWEEP, test_two="START = 100\n" + FAKE_SWEEP)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=16)
    result.stdout.fnmatch_lines(["*themis*", "themis manifest: *"])
    manifest = read_manifest(pytester.path / ".themis_cache" / "manifest.json")
    assert len(manifest["cells"]) == 8
