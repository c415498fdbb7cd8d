"""The end-of-session table: 100 columns, a pass/fail column per gate, "all N failed"."""

from __future__ import annotations

from typing import Any

from pytest_themis._pytest.summary import format_table


def _result(cell: str, mean: float | None, count: int, gates: list[Any] | None = None) -> dict:
    metrics = {
        "ExactMatch": {
            "mean": mean if mean is not None else float("nan"),
            "ci_low": (mean - 0.1) if mean is not None else float("nan"),
            "ci_high": (mean + 0.1) if mean is not None else float("nan"),
            "count": count,
        },
        "F1": {"mean": 0.5, "ci_low": 0.4, "ci_high": 0.6, "count": count},
    }
    return {
        "experiment": "tests/test_arithmetic.py::test_arithmetic_benchmark",
        "cell_id": cell,
        "metrics": metrics,
        "total": 200,
        "cached": 0,
        "errors": 200 - count,
        "tokens": 123456,
        "cost": 1.25,
        "duration": 12.5,
        "gates": gates or [],
    }


def _gate(metric: str, threshold: float, passed: bool) -> dict:
    return {"metric": metric, "threshold": threshold, "passed": passed, "compared": 0.7}


def _values(lines: list[str], cell: str) -> str:
    """The line with the cell's values: the cell's own line, or the one after its id."""
    at = next(i for i, line in enumerate(lines) if line.lstrip().startswith(cell))
    return lines[at] if "ExactMatch" in lines[at] else lines[at + 1]


def test_fits_100_columns_with_a_column_per_gate() -> None:
    long_cell = "openrouter/meta-llama/llama-3.1-405b-instruct-prompt0-t0"
    results = [
        _result(
            long_cell, 0.7, 200, [_gate("ExactMatch", 0.8, False), _gate("ExactMatch", 0.6, True)]
        ),
        _result(
            "m-prompt1-t0",
            0.9,
            200,
            [_gate("ExactMatch", 0.8, True), _gate("ExactMatch", 0.6, True)],
        ),
    ]
    lines = format_table(results)
    assert max(len(line) for line in lines) <= 100
    header = lines[0].split()
    assert header[-2:] == [">=0.8", ">=0.6"]
    assert lines[2] == results[0]["experiment"]
    assert lines[3].strip() == long_cell  # too long: on a line of its own, values below it
    assert lines[4].split()[-2:] == ["FAIL", "ok"]
    assert lines[5].strip().startswith("F1 0.500 [0.400, 0.600]")  # second metric, own line
    row = _values(lines, "m-prompt1-t0")
    assert row.split()[-2:] == ["ok", "ok"]


def test_a_cell_where_every_sample_failed_says_so() -> None:
    lines = format_table([_result("m-prompt0-t0", None, 0)])
    text = "\n".join(lines)
    assert "ExactMatch all 200 failed" in text and "nan" not in text


def test_a_single_gate_shows_the_number_it_compared() -> None:
    lines = format_table([_result("m-prompt0-t0", 0.7, 200, [_gate("ExactMatch", 0.8, False)])])
    assert lines[0].split()[-1] == ">=0.8"
    assert _values(lines, "m-prompt0-t0").split()[-2:] == ["FAIL", "0.700"]
    assert max(map(len, lines)) <= 100


def test_markdown_summary_escapes_pipes_and_says_all_failed() -> None:
    from pytest_themis.report.markdown import format_markdown

    result = _result("m|x-prompt0-t0", None, 0, [_gate("ExactMatch", 0.8, False)])
    text = format_markdown([result], run_id="r1")
    row = text.splitlines()[4]
    assert row.startswith(
        "| tests/test_arithmetic.py::test_arithmetic_benchmark [m\\|x-prompt0-t0]"
    )
    assert "ExactMatch all 200 failed" in row and "❌ ExactMatch" in row and "nan" not in text


def test_gates_on_several_metrics_keep_the_table_narrow_with_a_legend() -> None:
    gates = [
        _gate("ExactMatch", 0.8, False),
        _gate("F1", 0.45, True),
        _gate("ResponseLengthWithinBudget", 0.9, True),
    ]
    long_cell = "openrouter/meta-llama/llama-3.1-405b-instruct-prompt0-t0"
    lines = format_table([_result(long_cell, 0.7, 200, gates)])
    assert max(len(line) for line in lines) <= 100
    assert lines[0].split()[-3:] == ["g1", "g2", "g3"]
    assert _values(lines, long_cell).split()[-3:] == ["FAIL", "ok", "ok"]
    assert lines[-1] == (
        "gates: g1: ExactMatch>=0.8, g2: F1>=0.45, g3: ResponseLengthWithinBudget>=0.9"
    )
