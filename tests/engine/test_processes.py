"""Generation spread over worker processes gives the same records as one process."""

from __future__ import annotations

import os
import signal
import time

import pytest
from support.services import free_port

from pytest_themis.backends import WorkerProcessExecutionBackend
from pytest_themis.core.entities import ModelSpec, SamplingConfig
from pytest_themis.errors import ConfigurationError
from pytest_themis.evaluation.extractors import RegexExtractor
from pytest_themis.evaluation.metrics.exact_match import ExactMatch
from pytest_themis.evaluation.pipeline import EvaluationPipeline
from pytest_themis.experiment.cache_manager import CacheManager
from pytest_themis.experiment.orchestrator import ExperimentOrchestrator
from pytest_themis.generation.failfast import DEFAULT_THRESHOLD
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


def _ready_pool_pids(count: int, timeout: float = 120.0) -> set[int]:
    """The pool's worker pids once ``count`` are ready (polled with a deadline)."""
    from pytest_themis.generation import pool

    deadline = time.monotonic() + timeout
    while len(pids := pool.pool_pids()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(pids) == count, "the prestarted workers did not become ready"
    return set(pids)


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


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_prestarted_pool_serves_every_run_and_is_reused(tmp_path):
    from pytest_themis.generation import pool

    pool.prestart(2)
    try:
        pids = _ready_pool_pids(2)
        with OpenAIServer(FaultPlan(latency=0.01, rate_503=0.1, seed=5)) as server:
            first, runner1 = _run(server.url, tmp_path / "a", processes="auto")
            second, runner2 = _run(server.url, tmp_path / "b", processes="auto")
        # every record came from a pool worker: this process never generated
        assert runner1.records_from_workers == runner2.records_from_workers == len(ROWS)
        assert first.metric("ExactMatch").mean == second.metric("ExactMatch").mean == 1.0
        assert set(pool.pool_pids()) == pids  # the same two processes again
    finally:
        pool.shutdown_pool()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_pool_workers_follow_the_runs_client_and_fail_fast():
    """Workers build the run's default executor: its ``client=`` and its fail-fast rule."""
    from pytest_themis.generation import pool

    def run(api_base: str, client: str, rows: int) -> tuple[list, GenerationRunner]:
        plan = GenerationPlan(
            [PromptTemplate("p", "{q}")],
            [ModelSpec("openai/refused", "litellm", options={"api_base": api_base})],
            [SamplingConfig(max_tokens=8)],
        )
        tasks = list(plan.iter_tasks(plan.prepare(ROWS[:rows]), plan.cells))
        runner = GenerationRunner(client=client, processes=2, max_parallel=4)
        records = [r for batch in runner.run_batches(tasks) for r in batch]
        assert isinstance(runner.last_backend, WorkerProcessExecutionBackend)
        assert len(records) == rows and runner.records_from_workers == rows
        return records, runner

    pool.prestart(2)  # only the pool's workers send, so every record is theirs
    try:
        _ready_pool_pids(2)
        with OpenAIServer(FaultPlan(status_for_model={"refused": 400})) as server:
            by_client = {c: run(server.url, c, rows=8)[0] for c in ("litellm", "native")}
        closed, _ = run(f"http://127.0.0.1:{free_port()}/v1", "native", rows=120)
    finally:
        pool.shutdown_pool()
    # litellm's client names itself in the error it raises for the refused model.
    for client, records in by_client.items():
        assert {r.error.type for r in records} == {"BadRequestError"}
        assert {"litellm." in r.error.message for r in records} == {client == "litellm"}
    skipped = [r for r in closed if r.error.type == "FailFastError"]
    assert len(skipped) >= len(closed) - 2 * DEFAULT_THRESHOLD


def _refused(tmp_path, processes):
    """429s a 240-row ``max_parallel="auto"`` run gets from a server that admits 10 at once."""
    with OpenAIServer(FaultPlan(latency=0.2, max_concurrency=10, retry_after=0.2)) as server:
        runner = GenerationRunner(max_parallel="auto", processes=processes, max_retries=50)
        report = ExperimentOrchestrator(
            _plan(server.url),
            runner,
            EvaluationPipeline(RegexExtractor(r"####\s*(\S+)"), [ExactMatch()]),
            CacheManager(ExperimentStorage(tmp_path / f"p{processes}")),
        ).run(ROWS)
        stats = server.stats
    assert not report.failures and report.metric("ExactMatch").mean == 1.0
    return stats.request_count - len(ROWS), runner


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_auto_window_is_shared_across_processes(tmp_path):
    """With max_parallel="auto" one controller spans the processes.

    Measured against a baseline taken in the same test on the same machine (one process, one
    controller by construction), so machine load moves both alike: two processes sharing one
    window are refused about as often as one process; a controller per process would overshoot
    together, about twice as often.
    """
    from pytest_themis.generation import pool

    single, _ = _refused(tmp_path, processes=1)
    pool.prestart(2)  # two ready workers, so both really take part from the start
    try:
        _ready_pool_pids(2)
        shared, runner = _refused(tmp_path, processes=2)
    finally:
        pool.shutdown_pool()
    assert runner.records_from_workers == len(ROWS)
    assert shared <= 1.5 * single + 10, (shared, single)


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_killing_every_pool_worker_mid_run_loses_no_record(tmp_path):
    """SIGKILL both prestarted workers mid-run: their tasks are re-run here, each row once."""
    from pytest_themis.generation import pool

    rows = [{"id": f"k{i}", "q": f"Kill {i}", "gold": str(i)} for i in range(400)]
    pool.prestart(2)
    try:
        pids = _ready_pool_pids(2)
        killed: list[int] = []

        def kill_when_started(event) -> None:
            if not killed and event.done >= 40:
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)

        with OpenAIServer(FaultPlan(latency=0.05)) as server:
            report = ExperimentOrchestrator(
                _plan(server.url),
                GenerationRunner(max_parallel=16, processes=2, retry_base_delay=0.01),
                EvaluationPipeline(RegexExtractor(r"####\s*(\S+)"), [ExactMatch()]),
                CacheManager(ExperimentStorage(tmp_path)),
            ).run(rows, progress=kill_when_started, progress_interval=0)
    finally:
        pool.shutdown_pool()
    assert killed and len(killed) == 2
    assert not report.incomplete and report.missing == 0
    assert [r.row_id for r in report.records] == [r["id"] for r in rows]
    assert not report.failures and report.metric("ExactMatch").mean == 1.0


_CACHED_TEST = """
import pytest

ROWS = [{"id": f"c{i}", "q": f"Cached {i}", "gold": str(i)} for i in range(30)]

@pytest.mark.themis(dataset=ROWS, prompts="{q}\\nEXPECTED: {gold}", reference_field="gold",
                    metrics=["exact_match"], extractor="gsm8k")
def test_cell(themis_report):
    assert themis_report.total == 30 and themis_report.errors == 0
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_fully_cached_rerun_imports_no_provider_library(pytester: pytest.Pytester):
    """A litellm model on the command line asks for a worker pool; a cached rerun must still
    not import litellm here, nor start (or wait for) those workers."""
    from support.recording import child_pids, imported_modules, record_imports

    record_imports(pytester, ["litellm"], children=True)
    pytester.makepyfile(test_cached=_CACHED_TEST)
    with OpenAIServer() as server:
        args = [
            "-p",
            "no:cacheprovider",
            "--themis-model=openai/mock",
            f"--themis-api-base={server.url}",
            f"--themis-cache-dir={pytester.path / 'cache'}",
            "--themis-client=litellm",  # the native client would need no pool
        ]
        pytester.runpytest_subprocess(*args).assert_outcomes(passed=1)
        first = server.stats.request_count
        assert child_pids(pytester)  # the pool did start
        rerun = pytester.runpytest_subprocess(*args)
        rerun.assert_outcomes(passed=1)
        assert server.stats.request_count == first == 30
    assert imported_modules(pytester) == []
    assert child_pids(pytester) == []
