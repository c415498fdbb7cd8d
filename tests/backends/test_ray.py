"""RayExecutionBackend on real Ray clusters: in-process ``ray.init`` and a ``ray start`` head."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from support.ray_cluster import import_ray, local_ray, ray_head
from support.services import free_port

from pytest_themis.backends import resolve_execution_backend
from pytest_themis.backends.ray import RayExecutionBackend
from pytest_themis.core.entities import ModelSpec, SamplingConfig
from pytest_themis.errors import ConfigurationError
from pytest_themis.evaluation.extractors import RegexExtractor
from pytest_themis.evaluation.metrics.exact_match import ExactMatch
from pytest_themis.evaluation.pipeline import EvaluationPipeline
from pytest_themis.experiment.orchestrator import ExperimentOrchestrator
from pytest_themis.generation.plan import GenerationPlan
from pytest_themis.generation.runner import GenerationRunner
from pytest_themis.generation.templates import PromptTemplate

ROWS = [{"id": f"r{i}", "q": f"{i}+{i * 3}", "gold": str(4 * i)} for i in range(120)]


def _plan(**options: Any) -> GenerationPlan:
    return GenerationPlan(
        [PromptTemplate("bare", "{q}"), PromptTemplate("ask", "What is {q}?")],
        [ModelSpec("fake-math-llm", "fake", options=options)],
        [SamplingConfig()],
        reference_field="gold",
    )


def _scores(runner: GenerationRunner, rows: list[dict[str, Any]] = ROWS) -> dict[str, float]:
    report = ExperimentOrchestrator(
        _plan(),
        runner,
        EvaluationPipeline(RegexExtractor(r"(-?\d+)"), [ExactMatch()]),
    ).run(rows)
    return {r.generation.task.task_id: r.scores["ExactMatch"].value for r in report.records}


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    with local_ray() as ray:
        yield ray


def test_unreachable_address_is_a_one_line_error_before_any_request():
    import_ray()  # without the extra the error is the pip line (tested below), not this one
    backend = RayExecutionBackend(address=f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(
        ConfigurationError, match=r"cannot reach the Ray cluster.*ray start"
    ) as info:
        backend.open()
    assert "\n" not in str(info.value) and time.monotonic() - started < 10


@pytest.mark.slow  # with the cluster's start, over 5 s
def test_results_equal_a_local_run(ray_cluster):
    backend = RayExecutionBackend(actors=2)
    try:
        remote = _scores(GenerationRunner(execution_backend=backend, max_parallel=8))
        assert backend.describe()["actors"] == 2
    finally:
        backend.shutdown()
    local = _scores(GenerationRunner(max_parallel=8, processes=1))
    assert remote == local and len(local) == 2 * len(ROWS)
    assert 0 < sum(local.values()) < len(local)  # the fake model is right on most, not all


@pytest.mark.slow
def test_a_killed_actor_loses_nothing_and_doubles_nothing(ray_cluster):
    plan = _plan(latency=0.05)
    tasks = list(plan.iter_tasks(plan.prepare(ROWS)))
    backend = RayExecutionBackend(actors=2)
    runner = GenerationRunner(execution_backend=backend, max_parallel=8)
    try:
        batches = runner.run_batches(tasks)
        records = list(next(batches))
        ray_cluster.kill(backend.actors[0])
        for batch in batches:
            records.extend(batch)
        assert backend.resubmitted >= 1
    finally:
        backend.shutdown()
    assert Counter(r.task.task_id for r in records) == Counter(t.task_id for t in tasks)
    assert all(r.ok for r in records)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_fixed_window_holds_across_the_cluster(ray_cluster):
    from pytest_themis.testing import FaultPlan, OpenAIServer

    rows = [{"id": f"w{i}", "q": f"Wide {i}", "gold": str(i)} for i in range(60)]
    with OpenAIServer(FaultPlan(latency=0.2)) as server:
        plan = GenerationPlan(
            [PromptTemplate("p", "{q}\nEXPECTED: {gold}")],
            [ModelSpec("openai/mock", "litellm", options={"api_base": server.url})],
            [SamplingConfig(max_tokens=16)],
            reference_field="gold",
        )
        backend = RayExecutionBackend(actors=2, batch_size=2)
        try:
            report = ExperimentOrchestrator(
                plan,
                GenerationRunner(execution_backend=backend, max_parallel=6),
                EvaluationPipeline(RegexExtractor(r"####\s*(\S+)"), [ExactMatch()]),
            ).run(rows)
        finally:
            backend.shutdown()
        stats = server.stats
    assert not report.failures and report.metric("ExactMatch").mean == 1.0
    assert stats.request_count == len(rows)
    assert 2 < stats.max_in_flight <= 6


_DRIVER = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {tests!r})
    from backends.test_ray import ROWS, _scores
    from pytest_themis.backends import resolve_execution_backend
    from pytest_themis.generation.runner import GenerationRunner

    backend = resolve_execution_backend({spec!r})
    try:
        scores = _scores(GenerationRunner(execution_backend=backend, max_parallel=8), ROWS[:40])
        print(json.dumps({{"scores": scores, "describe": backend.describe()}}))
    finally:
        backend.shutdown()
    """
)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_head_node_started_by_ray_start_is_joined_by_address(tmp_path, monkeypatch):
    from pathlib import Path

    # A `ray start` head turns on token auth when a token file exists in the home folder; a
    # driver joining by address does not, so both run with it off (see README, Scaling out).
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    tests = str(Path(__file__).resolve().parent.parent)
    with ray_head(tmp_path) as address:
        script = _DRIVER.format(tests=tests, spec=f"ray:{address}")
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=240
        )
    assert done.returncode == 0, done.stderr[-3000:]
    payload = json.loads(done.stdout.strip().splitlines()[-1])
    assert payload["describe"]["address"] == address
    local = _scores(GenerationRunner(max_parallel=8, processes=1), ROWS[:40])
    assert payload["scores"] == local


def test_ray_names_resolve_to_the_backend():
    backend = resolve_execution_backend("ray://127.0.0.1:10001")
    assert isinstance(backend, RayExecutionBackend) and backend.address == "ray://127.0.0.1:10001"


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees without the extra
    with pytest.raises(ConfigurationError, match=r'pip install "pytest-themis\[ray\]"'):
        RayExecutionBackend().open()
