"""Generation spread over worker processes gives the same records as one process."""

from __future__ import annotations

import pytest

from pytest_themis.core.entities import ModelSpec, SamplingConfig
from pytest_themis.errors import ConfigurationError
from pytest_themis.evaluation.extractors import RegexExtractor
from pytest_themis.evaluation.metrics.exact_match import ExactMatch
from pytest_themis.evaluation.pipeline import EvaluationPipeline
from pytest_themis.experiment.cache_manager import CacheManager
from pytest_themis.experiment.orchestrator import ExperimentOrchestrator
from pytest_themis.generation.plan import GenerationPlan
from pytest_themis.generation.router import ProviderRouter
from pytest_themis.generation.runner import GenerationRunner
from pytest_themis.generation.templates import PromptTemplate
from pytest_themis.storage import ExperimentStorage
from pytest_themis.testing import FaultPlan, OpenAIServer

#: Each test starts worker processes that import litellm (15-40 s apiece on 2 busy cores).
pytestmark = pytest.mark.slow

ROWS = [{"id": f"q{i}", "q": f"Question {i}", "gold": str(i)} for i in range(240)]


def _plan(url: str) -> GenerationPlan:
    """One litellm cell against the test server; the prompt carries the answer it should echo."""
    return GenerationPlan(
        [PromptTemplate("p", "{q}\nEXPECTED: {gold}")],
        [ModelSpec("openai/mock", "litellm", options={"api_base": url})],
        [SamplingConfig(max_tokens=32)],
        reference_field="gold",
    )


def _run(url: str, cache_dir, processes, max_parallel=8):
    plan = _plan(url)
    # Worker processes exist for litellm's CPU cost; the native client would stay in one process.
    runner = GenerationRunner(
        ProviderRouter(client="litellm"),
        max_parallel=max_parallel,
        processes=processes,
        retry_base_delay=0.01,
    )
    orchestrator = ExperimentOrchestrator(
        plan,
        runner,
        EvaluationPipeline(RegexExtractor(r"####\s*(\S+)"), [ExactMatch()]),
        CacheManager(ExperimentStorage(cache_dir)),
    )
    return orchestrator.run(ROWS), runner


@pytest.mark.timeout(180)
def test_worker_processes_share_the_work_and_send_each_request_once(tmp_path):
    # Slow enough (240 x 0.4 s / 8 = 12 s alone) that this process cannot finish before the
    # worker process has started and taken a share.
    with OpenAIServer(FaultPlan(latency=0.4, rate_500=0.1, seed=3)) as server:
        multi, runner = _run(server.url, tmp_path / "b", processes=2)
        stats = server.stats
    assert runner.records_from_workers > 0
    assert len(multi.records) == len(ROWS) and not multi.failures
    assert multi.metric("ExactMatch").mean == 1.0
    assert [r.row_id for r in multi.records] == [r["id"] for r in ROWS]
    ok_per_prompt = {}
    for _, prompt, outcome in stats.arrivals:
        if outcome == "ok":
            ok_per_prompt[prompt] = ok_per_prompt.get(prompt, 0) + 1
    assert len(ok_per_prompt) == len(ROWS) and set(ok_per_prompt.values()) == {1}


def test_processes_argument_is_validated():
    with pytest.raises(ConfigurationError, match="processes"):
        GenerationRunner(processes=0)


@pytest.mark.timeout(180)
def test_prestarted_pool_serves_every_run_and_is_reused(tmp_path):
    from pytest_themis.generation import processes

    processes.prestart(2)
    try:
        pids = {w.proc.pid for w in processes._POOL}
        with OpenAIServer(FaultPlan(latency=0.01, rate_503=0.1, seed=5)) as server:
            first, runner1 = _run(server.url, tmp_path / "a", processes="auto")
            second, runner2 = _run(server.url, tmp_path / "b", processes="auto")
        # every record came from a pool worker: this process never generated
        assert runner1.records_from_workers == runner2.records_from_workers == len(ROWS)
        assert first.metric("ExactMatch").mean == second.metric("ExactMatch").mean == 1.0
        assert {w.proc.pid for w in processes._POOL} == pids  # the same two processes again
    finally:
        processes.shutdown_pool()


@pytest.mark.timeout(180)
def test_auto_window_is_shared_across_processes(tmp_path):
    """With max_parallel="auto" one controller spans the processes, so 429s stay rare."""
    with OpenAIServer(FaultPlan(latency=0.2, max_concurrency=10, retry_after=0.2)) as server:
        plan = _plan(server.url)
        runner = GenerationRunner(max_parallel="auto", processes=2, max_retries=20)
        report = ExperimentOrchestrator(
            plan,
            runner,
            EvaluationPipeline(RegexExtractor(r"####\s*(\S+)"), [ExactMatch()]),
            CacheManager(ExperimentStorage(tmp_path)),
        ).run(ROWS)
        stats = server.stats
    assert not report.failures and report.metric("ExactMatch").mean == 1.0
    assert stats.request_count - len(ROWS) <= 0.2 * stats.request_count


@pytest.mark.timeout(180)
def test_no_hidden_cap_on_requests_in_flight(tmp_path):
    """max_parallel=256 really puts 256 requests on the wire through litellm (T3's premise)."""
    rows = [{"id": f"w{i}", "q": f"Wide {i}", "gold": str(i)} for i in range(256)]
    with OpenAIServer(FaultPlan(latency=1.0)) as server:
        plan = _plan(server.url)
        report = ExperimentOrchestrator(
            plan,
            GenerationRunner(max_parallel=256, processes=1),
            EvaluationPipeline(RegexExtractor(r"####\s*(\S+)"), [ExactMatch()]),
            CacheManager(ExperimentStorage(tmp_path)),
        ).run(rows)
        stats = server.stats
    assert not report.failures and stats.request_count == 256
    assert stats.max_in_flight == 256


@pytest.mark.timeout(180)
def test_a_slow_consumer_does_not_hold_back_requests():
    with OpenAIServer(FaultPlan(latency=0.05)) as server:
        plan = _plan(server.url)
        tasks = list(plan.iter_tasks(plan.prepare(ROWS[:60]), plan.cells))
        batches = GenerationRunner(max_parallel=4, processes=2).run_batches(tasks)
        first = next(batches)
        # The caller is still busy with its first batch (it has not asked for the next one);
        # the remaining requests must go out meanwhile, well beyond any prefetched share.
        assert server.wait_for_requests(len(tasks), timeout=60)
        records = first + [record for batch in batches for record in batch]
    assert len(records) == len(tasks) and not [r for r in records if r.error]
