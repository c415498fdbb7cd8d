"""Your own rows, prompts and metrics; one item per cell, or one item per row.

``prompts`` as a dict names each template, so ids read ``test_arithmetic[fake-oracle-bare-t0]``.
``per_sample=True`` turns every row into its own item; the whole cell is still generated at
once, concurrently, when its first item runs.
"""

import pytest

ROWS = [
    {"id": "add", "question": "12+30", "answer": "42"},
    {"id": "mul", "question": "6*7", "answer": "42"},
    {"id": "sub", "question": "50-8", "answer": "42"},
    {"id": "mix", "question": "2*20+2", "answer": "42"},
]

SETUP = dict(
    dataset=ROWS,
    prompts={"bare": "{question}", "polite": "Please compute: {question}"},
    models="fake:fake-oracle",
    reference_field="answer",
    metrics=["exact_match"],
)


@pytest.mark.themis(**SETUP)
def test_arithmetic(themis_report, themis_cell):
    assert themis_cell.template_name in ("bare", "polite")
    themis_report.assert_metric("ExactMatch", "==", 1.0)


@pytest.mark.themis(**SETUP, per_sample=True)
def test_each_row(themis_sample):
    assert themis_sample.prediction == themis_sample.task.reference
    assert themis_sample.scores["ExactMatch"].value == 1.0
