"""One set of number formats for the terminal, Markdown and HTML comparison tables."""

from __future__ import annotations

import math
from typing import Any

from pytest_themis.report.formatting import (
    COMPARISON_HEADER,
    comparison_rows,
    format_comparison,
    interval,
    metric_text,
    number,
    p_value,
)
from pytest_themis.report.html import render_html
from pytest_themis.report.markdown import format_markdown


def test_numbers_signs_digits_and_missing_values() -> None:
    assert number(0.5) == "0.500" and number(-0.04, signed=True) == "-0.040"
    assert number(0.25, signed=True) == "+0.250" and number(0.12345, digits=4) == "0.1235"
    assert number(None) == number(math.nan) == number(math.inf) == "–"
    assert number(math.nan, missing="nan") == "nan"
    assert p_value(0.000123) == "0.000123" and p_value(0.5) == "0.5" and p_value(None) == "–"
    assert interval(-0.1, 0.2, signed=True) == "[-0.100, +0.200]"
    assert interval(None, 0.2) == "[–, 0.200]"


def test_metric_text_says_when_every_sample_failed() -> None:
    agg = {"mean": 0.7, "ci_low": 0.6, "ci_high": 0.8, "count": 10}
    assert metric_text("ExactMatch", agg, 10) == "ExactMatch 0.700 [0.600, 0.800]"
    failed = {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "count": 0}
    assert metric_text("ExactMatch", failed, 200) == "ExactMatch all 200 failed"


def test_terminal_markdown_and_html_show_the_same_comparison_numbers(two_runs: Any) -> None:
    _, base, new = two_runs
    comparison = new.compare(base)
    rows = list(comparison_rows(comparison))
    assert len(rows) == 4 and all(len(r) == len(COMPARISON_HEADER) for r in rows)
    terminal = format_comparison(comparison)
    markdown = format_markdown([], run_id="new", comparison=comparison)
    html = render_html(new.manifest, [], comparison=comparison)
    for row in rows:
        line = next(x for x in terminal if x.startswith(row[0]))
        assert line.split() == " ".join(row).split()  # the terminal table pads the same texts
        assert f"| {' | '.join(row)} |" in markdown
        assert "".join(f"<td>{cell}</td>" for cell in row) in html
