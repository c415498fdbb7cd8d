"""Per-sample mode: one item per row, all rows of a cell generated together and concurrently."""

from __future__ import annotations

import pytest
from plugin_support import base_args

pytestmark = pytest.mark.timeout(120)

CONCURRENCY_MODEL = """
import asyncio
import threading

_lock = threading.Lock()
STATE = {"in_flight": 0, "max_in_flight": 0, "calls": 0}


async def answer(prompt):
    with _lock:
        STATE["calls"] += 1
        STATE["in_flight"] += 1
        STATE["max_in_flight"] = max(STATE["max_in_flight"], STATE["in_flight"])
    # Hold this request until a second one is in flight (bounded): sequential generation
    # never gets there and the test below sees max_in_flight == 1.
    for _ in range(300):
        if STATE["max_in_flight"] > 1:
            break
        await asyncio.sleep(0.01)
    with _lock:
        STATE["in_flight"] -= 1
    left, right = prompt.split("+")
    return str(int(left) + int(right))
"""


def test_one_item_per_row_generated_concurrently(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(concmodel=CONCURRENCY_MODEL)
    pytester.syspathinsert()
    pytester.makepyfile(
        test_rows="""
        import pytest
        import concmodel

        ROWS = [{"id": f"row{i}", "q": f"{i}+1", "a": str(i + 1)} for i in range(6)]

        @pytest.mark.themis(dataset=ROWS, prompts="{q}", models="python:concmodel:answer",
                            reference_field="a", metrics=["exact_match"], per_sample=True)
        def test_row(themis_sample, themis_cell):
            assert themis_sample.scores["ExactMatch"].value == 1.0
            assert themis_sample.cell_id == themis_cell.cell_id

        def test_concurrency_seen():
            assert concmodel.STATE["calls"] == 6
            assert concmodel.STATE["max_in_flight"] > 1
        """
    )
    result = pytester.runpytest(*base_args(pytester), "-v", "--themis-max-parallel=4")
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(["*test_row[[]concmodel.answer-prompt-t0-row0[]] PASSED*"])
    assert result.stdout.str().count("test_rows.py::test_row[") == 6


def test_failing_sample_fails_only_its_item(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        ROWS = [{"id": "good", "q": "1+1", "a": "2"}, {"id": "bad", "q": "2+2", "a": "5"}]

        @pytest.mark.themis(dataset=ROWS, prompts="{q}", models="fake:fake-oracle",
                            reference_field="a", metrics=["exact_match"], per_sample=True)
        def test_row(themis_sample):
            assert themis_sample.scores["ExactMatch"].value == 1.0, themis_sample.prediction
        """
    )
    result = pytester.runpytest(*base_args(pytester))
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED *test_row[[]fake-oracle-prompt-t0-bad[]]*"])


def test_themis_sample_without_per_sample_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.themis(dataset=[{"q": "1+1", "a": "2"}], prompts="{q}",
                            models="fake:fake-oracle", reference_field="a",
                            metrics=["exact_match"])
        def test_row(themis_sample):
            pass
        """
    )
    result = pytester.runpytest(*base_args(pytester))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*themis_sample needs *per_sample=True*"])
