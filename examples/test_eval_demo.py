"""Evaluations as tests, offline: the shipped demo benchmark against two fake models.

Run with ``pytest examples``. Each model becomes its own item
(``test_demo_accuracy[fake-math-llm-demo-cot-t0]`` ...), generations are cached in
``.themis_cache``, and a summary table plus a manifest are written at the end of the session.
Point the same test at a real model with ``--themis-model=openai/gpt-4o-mini``.
"""

import pytest


@pytest.mark.themis(dataset="demo", models=["fake:fake-math-llm", "fake:fake-oracle"])
def test_demo_accuracy(themis_report):
    # The preset brings the prompt, the GSM8K-style extractor and the NumericMatch metric.
    accuracy = themis_report.metrics["NumericMatch"]
    assert accuracy.count == 50
    themis_report.assert_metric("NumericMatch", ">=", 0.7)


@pytest.mark.themis(dataset="demo", models="fake:fake-oracle", limit=10)
def test_no_generation_errors(themis_report):
    assert themis_report.errors == 0
    assert themis_report.total == 10
