"""Runs the store and engine tests share: a Level 4 2 × 2 sweep, a rerun served from the store,
and two demo runs through pytest."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_themis import evaluate
from pytest_themis.core.entities import ModelSpec, SamplingConfig
from pytest_themis.core.reports import ExperimentReport
from pytest_themis.evaluation.extractors import IdentityExtractor
from pytest_themis.evaluation.metrics.exact_match import ExactMatch
from pytest_themis.evaluation.pipeline import EvaluationPipeline
from pytest_themis.experiment.cache_manager import CacheManager
from pytest_themis.experiment.orchestrator import ExperimentOrchestrator
from pytest_themis.generation.plan import GenerationPlan
from pytest_themis.generation.runner import GenerationRunner
from pytest_themis.generation.templates import PromptTemplate

SWEEP_ROWS = [{"id": f"r{i}", "q": f"{i}+{i}", "a": str(2 * i)} for i in range(20)]
#: 2 fake models × 2 temperatures × 20 rows.
SWEEP_RECORDS = 80


def level4_sweep(storage: Any = None, backend: Any = None) -> ExperimentReport:
    """The seed's manual assembly: plan, runner (on ``backend``), pipeline, cache in ``storage``
    (a URL, folder or store; None turns the cache off). The runner and store are closed after."""
    plan = GenerationPlan(
        templates=[PromptTemplate(name="plain", template="{q}")],
        models=[
            ModelSpec(identifier="fake-oracle", provider="fake"),
            ModelSpec(identifier="fake-math-llm", provider="fake"),
        ],
        sampling_parameters=[SamplingConfig(temperature=0.0), SamplingConfig(temperature=0.7)],
        reference_field="a",
    )
    cache = CacheManager(storage=storage, enable_cache=storage is not None)
    runner = GenerationRunner(max_parallel=8, execution_backend=backend, processes=1)
    orchestrator = ExperimentOrchestrator(
        generation_plan=plan,
        generation_runner=runner,
        evaluation_pipeline=EvaluationPipeline(IdentityExtractor(), [ExactMatch()]),
        cache_manager=cache,
    )
    try:
        return orchestrator.run(dataset=SWEEP_ROWS, run_id="sweep")
    finally:
        runner.close()
        if cache.storage is not None:
            cache.storage.close()


def rerun_from_store(first: ExperimentReport, *args: Any, **options: Any) -> ExperimentReport:
    """``evaluate(*args, **options)`` again after the run ``first`` on the same store.

    Asserts what every store must give: each record comes from the store, with ``first``'s scores.
    """
    again = evaluate(*args, **options)
    assert len(again.records) == len(first.records)
    assert all(r.generation.cached for r in again.records)
    assert [r.scores for r in again.records] == [r.scores for r in first.records]
    return again


def demo_twice(pytester: pytest.Pytester, storage: str, secret: str) -> list[dict[str, Any]]:
    """``pytest --themis-preset=demo --themis-storage=…`` twice; each run's counts.

    Asserts what every store must give: both runs pass, the secret is in neither manifest nor
    output, the first run generates all 50 rows and the second serves them all from the store.
    """
    counts = []
    for run in range(2):
        manifest = pytester.path / f"manifest{run}.json"
        result = pytester.runpytest_subprocess(
            "-p",
            "no:cacheprovider",
            "--themis-preset=demo",
            f"--themis-storage={storage}",
            f"--themis-manifest={manifest}",
        )
        result.assert_outcomes(passed=1)
        text = manifest.read_text()
        assert secret not in text and secret not in result.stdout.str()
        cell = json.loads(text)["cells"][0]
        counts.append({**cell["counts"], **cell["execution"]})
    assert counts[0]["total"] == 50 and counts[0]["cached"] == 0
    assert counts[1]["cached"] == 50 and counts[1]["generated"] == 0
    return counts


def per_sample(report: ExperimentReport) -> dict[tuple[str, str, int], dict[str, float]]:
    """Scores by (cell, row, sample); fails on a sample scored twice or an error."""
    out: dict[tuple[str, str, int], dict[str, float]] = {}
    for rec in report.records:
        key = (rec.cell_id, rec.row_id, rec.task.sample_index)
        assert key not in out, f"{key} scored twice"
        assert rec.error is None, rec.error
        out[key] = {name: score.value for name, score in rec.scores.items()}
    return out
