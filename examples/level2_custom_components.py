"""Level 2 — your rows, your prompt, your pipeline, still one ``evaluate()`` call.

The "model" here is a Python function standing in for your application (a triage service); swap
it for ``model="openai/gpt-4o-mini"`` to grade a raw LLM with the same pipeline.
"""

from __future__ import annotations

from typing import Any

from pytest_themis import evaluate
from pytest_themis.evaluation.extractors import RegexExtractor
from pytest_themis.evaluation.metrics.base import Metric
from pytest_themis.evaluation.metrics.exact_match import ExactMatch
from pytest_themis.evaluation.pipeline import EvaluationPipeline

notes = [
    {
        "id": "doc_1",
        "text": "Patient reports severe chest pain radiating to the left arm.",
        "gold": "Critical",
    },
    {"id": "doc_2", "text": "Patient has a mild cough for two days.", "gold": "Routine"},
    {"id": "doc_3", "text": "Unresponsive after a fall, shallow breathing.", "gold": "Critical"},
    {
        "id": "doc_4",
        "text": "Requests a repeat prescription for allergy tablets.",
        "gold": "Routine",
    },
    {"id": "doc_5", "text": "Sudden severe headache, worst of their life.", "gold": "Critical"},
    {"id": "doc_6", "text": "Small cut on the finger, bleeding stopped.", "gold": "Routine"},
]


def triage_app(prompt: str) -> str:
    """A keyword triage rule — the application under test."""
    urgent = any(word in prompt.lower() for word in ("severe", "unresponsive", "chest"))
    return f"Assessment done. Severity: {'Critical' if urgent else 'Routine'}"


class MissedCriticalRate(Metric):
    """1.0 when a Critical case was labelled Routine (lower is better)."""

    name = "MissedCriticalRate"

    def compute(self, prediction: str, reference: Any) -> float:
        return float(reference == "Critical" and prediction != "Critical")


pipeline = EvaluationPipeline(
    extractor=RegexExtractor(pattern=r"Severity:\s*(Critical|Routine)"),
    metrics=[ExactMatch(), MissedCriticalRate()],
)

report = evaluate(
    dataset=notes,
    model=triage_app,
    prompt="Read the notes and output 'Severity: <level>'. Notes: {text}",
    evaluation_pipeline=pipeline,
    reference_field="gold",
)

for name, agg in report.evaluation_report.metrics.items():
    print(f"{name}: {agg.mean:.3f} (n={agg.count})")
