"""Marker tests: parametrization per cell, -k selection, shared cells, fixture overrides, gates."""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_support import base_args, calls

pytestmark = pytest.mark.timeout(120)

SWEEP = """
import pytest
from pytest_themis.core.entities import SamplingConfig

ROWS = [
    {"id": "r1", "q": "2+2", "a": "4"},
    {"id": "r2", "q": "3*5", "a": "15"},
    {"id": "r3", "q": "10-7", "a": "3"},
]
SWEEP = dict(
    dataset=ROWS,
    prompts={"plain": "{q}", "ask": "Compute: {q}"},
    models=["python:countmodel:answer", "fake:fake-oracle"],
    sampling=[SamplingConfig(temperature=0.0), {"temperature": 0.7}],
    reference_field="a",
    metrics=["exact_match"],
)


@pytest.mark.themis(**SWEEP)
def test_accuracy(themis_report, themis_cell):
    assert themis_report.cell.cell_id == themis_cell.cell_id
    assert themis_report.metrics["ExactMatch"].count == 3
    themis_report.assert_metric("ExactMatch", ">=", 1.0)


@pytest.mark.themis(**SWEEP)
def test_same_cells_again(themis_report):
    assert themis_report.metrics["exact_match"].mean == 1.0
"""


def test_sweep_yields_one_item_per_cell_with_readable_ids(
    pytester: pytest.Pytester, call_log: Path
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest(*base_args(pytester), "--collect-only", "-q")
    ids = [line for line in result.stdout.lines if "::test_accuracy[" in line]
    assert len(ids) == 8
    assert "test_sweep.py::test_accuracy[countmodel.answer-ask-t0.7]" in ids
    assert "test_sweep.py::test_accuracy[fake-oracle-plain-t0]" in ids
    assert calls(call_log) == []  # collection generates nothing


def test_sweep_runs_and_shares_cells_between_tests(
    pytester: pytest.Pytester, call_log: Path
) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest(*base_args(pytester))
    result.assert_outcomes(passed=16)
    # 4 python-model cells x 3 rows, generated once although two tests read each cell
    assert len(calls(call_log)) == 12
    result.stdout.fnmatch_lines(["*themis*", "*cell*metrics (95% CI)*", "*ExactMatch 1.000*"])


def test_k_selects_cells_by_model(pytester: pytest.Pytester, call_log: Path) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    result = pytester.runpytest(*base_args(pytester), "-k", "test_accuracy and fake-oracle")
    result.assert_outcomes(passed=4, deselected=12)
    assert calls(call_log) == []


def test_second_run_reads_the_disk_cache(pytester: pytest.Pytester, call_log: Path) -> None:
    pytester.makepyfile(test_sweep=SWEEP)
    pytester.runpytest(*base_args(pytester), "-k", "countmodel").assert_outcomes(
        passed=8, deselected=8
    )
    assert len(calls(call_log)) == 12
    rerun = pytester.runpytest(*base_args(pytester), "-k", "countmodel")
    rerun.assert_outcomes(passed=8, deselected=8)
    assert len(calls(call_log)) == 12


def test_conftest_overrides_dataset_and_pipeline(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from pytest_themis.evaluation.pipeline import EvaluationPipeline
        from pytest_themis.evaluation.extractors import IdentityExtractor
        from pytest_themis.evaluation.metrics import ResponseLength

        @pytest.fixture
        def themis_dataset():
            return [{"id": "x", "q": "6*7", "a": "42"}, {"id": "y", "q": "1+1", "a": "2"}]

        @pytest.fixture
        def themis_pipeline():
            return EvaluationPipeline(extractor=IdentityExtractor(), metrics=[ResponseLength()])
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.themis(prompts="{q}", models="fake:fake-oracle", reference_field="a")
        def test_override(themis_report):
            assert [r.row_id for r in themis_report.records] == ["x", "y"]
            assert list(themis_report.metrics) == ["ResponseLength"]
            assert themis_report.metrics["ResponseLength"].mean == 1.5
        """
    )
    result = pytester.runpytest(*base_args(pytester))
    result.assert_outcomes(passed=1)


def test_failed_threshold_fails_with_the_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        ROWS = [{"id": str(i), "q": f"{i}+{i}", "a": str(2 * i)} for i in range(20)]

        @pytest.mark.themis(dataset=ROWS, prompts="{q}", models="fake:sloppy",
                            reference_field="a", metrics=["exact_match"])
        def test_gate(themis_report):
            themis_report.assert_metric("ExactMatch", ">=", 0.99)
        """
    )
    result = pytester.runpytest(*base_args(pytester))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*sloppy-prompt-t0: ExactMatch mean * is not >= 0.99*"])


def test_cli_fail_under_gates_marker_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        ROWS = [{"id": str(i), "q": f"{i}*3", "a": str(3 * i)} for i in range(20)]

        @pytest.mark.themis(dataset=ROWS, prompts="{q}", models=["fake:fake-oracle", "fake:sloppy"],
                            reference_field="a", metrics=["exact_match"])
        def test_gate(themis_report):
            pass
        """
    )
    result = pytester.runpytest(*base_args(pytester), "--themis-fail-under=0.99")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*--themis-fail-under ExactMatch=0.99 (point) failed*"])


def test_replay_miss_fails_naming_the_task(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.themis(dataset=[{"id": "only", "q": "1+1", "a": "2"}], prompts="{q}",
                            models="fake:fake-oracle", reference_field="a",
                            metrics=["exact_match"])
        def test_replay(themis_report):
            pass
        """
    )
    result = pytester.runpytest(*base_args(pytester), "--themis-cache=replay")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*1 of 1 generation(s) failed*", "*fake-oracle-prompt-t0/only#0*"])
    pytester.runpytest(*base_args(pytester)).assert_outcomes(passed=1)
    pytester.runpytest(*base_args(pytester), "--themis-cache=replay").assert_outcomes(passed=1)


def test_generation_errors_fail_the_item_beyond_max_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_themis.core.entities import ModelSpec

        BROKEN = ModelSpec("fake-oracle", "fake", options={"error": "auth"})

        @pytest.mark.themis(dataset=[{"q": "1+1", "a": "2"}, {"q": "2+2", "a": "4"}],
                            prompts="{q}", models=[BROKEN], reference_field="a",
                            metrics=["exact_match"])
        def test_errors(themis_report):
            pass
        """
    )
    result = pytester.runpytest(*base_args(pytester))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*2 of 2 generation(s) failed*--themis-max-errors=0*"])
    tolerant = pytester.runpytest(*base_args(pytester), "--themis-max-errors=2")
    tolerant.assert_outcomes(passed=1)


def test_themis_fixture_outside_themis_test_fails_clearly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_plain(themis_dataset):
            pass
        """
    )
    result = pytester.runpytest(*base_args(pytester))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*themis_dataset is only available to themis tests*"])


def test_module_and_class_markers_parametrize_their_tests(pytester: pytest.Pytester) -> None:
    marker = (
        'pytest.mark.themis(dataset=[{"id": "r1", "q": "1+1", "a": "2"}], prompts="{q}", '
        'models=["fake:fake-oracle", "fake:other"], reference_field="a", metrics=["exact_match"])'
    )
    pytester.makepyfile(
        test_module=f"import pytest\n\npytestmark = {marker}\n\n"
        "def test_by_module(themis_cell):\n    pass\n",
        test_class=f"import pytest\n\n@{marker}\nclass TestMarked:\n"
        "    def test_by_class(self, themis_cell):\n        pass\n\n"
        "def test_unmarked():\n    pass\n",
    )
    result = pytester.runpytest(*base_args(pytester), "--collect-only", "-q")
    ids = sorted(line for line in result.stdout.lines if "::" in line)
    assert ids == [
        "test_class.py::TestMarked::test_by_class[fake-oracle-prompt-t0]",
        "test_class.py::TestMarked::test_by_class[other-prompt-t0]",
        "test_class.py::test_unmarked",
        "test_module.py::test_by_module[fake-oracle-prompt-t0]",
        "test_module.py::test_by_module[other-prompt-t0]",
    ], result.stdout.str()


def test_class_marker_is_seen_on_a_test_without_result_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.themis(dataset=[{"q": "1+1", "a": "2"}], prompts="{q}", models="fake:x")
        class TestMarked:
            def test_forgot_the_fixture(self):
                pass
        """
    )
    # no themis flag: themis starts during collection and still reports at its end
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_forgot_the_fixture: a test marked * must request*"])


def test_error_budget_applies_when_themis_starts_during_collection(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_themis.core.entities import ModelSpec

        @pytest.mark.themis(dataset=[{"q": "1+1", "a": "2"}], prompts="{q}",
                            models=[ModelSpec("fake-oracle", "fake", options={"error": "auth"})],
                            reference_field="a", metrics=["exact_match"])
        def test_errors(themis_report):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")  # no themis flag or ini key
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*1 of 1 generation(s) failed*--themis-max-errors=0*"])
