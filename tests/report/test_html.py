"""The HTML report as a file: ExperimentReport.to_html, embedded data, redaction."""

from __future__ import annotations

import re
from pathlib import Path

from report_support import embedded_samples

from pytest_themis import evaluate
from pytest_themis.report.html import render_html
from pytest_themis.report.redaction import scrub

ROWS = [{"id": f"r{i}", "q": f"{i} + {i}", "answer": str(2 * i)} for i in range(25)]


def test_to_html_embeds_every_sample(tmp_path: Path) -> None:
    report = evaluate(
        dataset=ROWS, model=["fake:a", "fake:b"], reference_field="answer",
        metrics=["exact_match"], storage=tmp_path / "store", wrong_rate=0.3, prompt="{q}",
    )  # fmt: skip
    path = report.to_html(tmp_path / "out" / "r.html")
    text = path.read_text()
    samples = embedded_samples(text)
    assert len(samples) == len(report.records) == 50
    wrong = sum(1 for r in report.records if r.scores["ExactMatch"].value < 1)
    assert sum(s[9] for s in samples) == wrong > 0
    assert text.count('<rect class="bar"') == 2
    # nothing to fetch: no http(s) URL but the SVG namespace name
    assert not re.findall(r"https?://(?!www\.w3\.org/2000/svg)", text)


def test_script_end_tags_in_texts_cannot_close_the_data_element() -> None:
    row = {
        "experiment": "e", "cell_id": "c", "row_id": "r0", "epoch": 0,
        "response": "</script><script>alert(1)</script>", "scores": {"ExactMatch": 0.0},
    }  # fmt: skip
    text = render_html({"run_id": "x", "cells": []}, [row])
    assert "</script><script>alert(1)" not in text
    assert embedded_samples(text)[0][4] == row["response"]


def test_scrub_hides_keys_and_url_passwords_but_keeps_token_counts() -> None:
    value = {
        "options": {"api_key": "sk-abcdef", "headers": {"Authorization": "Bearer sk-x"}},
        "url": "postgresql://user:hunter22@db/x",
        "tokens": {"prompt": 3, "completion": 4},
    }
    clean = scrub(value)
    assert clean["options"]["api_key"] == "***"
    assert (
        clean["options"]["headers"] == "***"
        or clean["options"]["headers"]["Authorization"] == "***"
    )
    assert "hunter22" not in clean["url"]
    assert clean["tokens"] == {"prompt": 3, "completion": 4}
