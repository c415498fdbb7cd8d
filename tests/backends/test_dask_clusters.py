"""DaskExecutionBackend on real clusters: a LocalCluster of worker processes and a
``dask scheduler`` + ``dask worker`` pair of subprocesses connected by address.

Same per-sample scores as a local run; a worker killed mid-run loses nothing and scores every
row once.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.dask_cluster import StallingModel, local_cluster, poll, subprocess_cluster
from support.sweeps import per_sample

from pytest_themis import evaluate
from pytest_themis.backends import resolve_execution_backend
from pytest_themis.backends.dask import DaskExecutionBackend
from pytest_themis.core.reports import ExperimentReport
from pytest_themis.errors import ConfigurationError

pytestmark = pytest.mark.slow

ROWS = [{"id": f"r{i}", "q": f"What is {i}+{i % 7}?", "a": str(i + i % 7)} for i in range(50)]
GRID: dict[str, Any] = dict(
    model=["fake:fake-math-a", "fake:fake-math-b"],
    prompt=["{q}", "Answer briefly. {q}"],
    reference_field="a",
    metrics=["exact_match"],
    storage=None,
)


@pytest.fixture(scope="module")
def local_scores() -> dict[tuple[str, str, int], dict[str, float]]:
    return per_sample(evaluate(dataset=ROWS, **GRID))


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with local_cluster(n_workers=2) as client:
        yield client


def test_local_cluster_scores_equal_a_local_run(client: Any, local_scores: Any) -> None:
    backend = DaskExecutionBackend(client)
    try:
        report = evaluate(dataset=ROWS, execution_backend=backend, **GRID)
    finally:
        backend.shutdown()
    assert per_sample(report) == local_scores
    assert len(local_scores) == 2 * 2 * len(ROWS)
    assert backend.describe()["workers"] == 2
    assert client.status == "running"  # a client we were given stays open


def test_generation_runs_in_the_workers_and_reuses_their_kernel(
    client: Any, tmp_path: Path
) -> None:
    def kernels() -> int:
        from pytest_themis.backends import _remote

        return sum(run.kernel is not None for run in _remote._RUNS.values())

    model = StallingModel(str(tmp_path))
    worker_pids = set(client.run(os.getpid).values())
    before = client.run(kernels)
    backend = DaskExecutionBackend(client, batch_size=5)
    try:
        report = evaluate(
            dataset=ROWS,
            model=model,
            prompt="{q}",
            reference_field="a",
            metrics=["exact_match"],
            storage=None,
            max_parallel=10,
            execution_backend=backend,
        )
    finally:
        backend.shutdown()
    calls = model.calls()
    assert len(report.records) == len(ROWS)
    assert {pid for pid, _ in calls} <= worker_pids
    assert len(calls) == len(ROWS)
    # 10 batches of 5, but each worker that served some built one kernel for the run.
    after = client.run(kernels)
    served = {pid for pid, _ in calls}
    pid_of = client.run(os.getpid)
    assert {w: after[w] - before[w] for w in after} == {w: int(pid_of[w] in served) for w in after}


def test_orchestrator_sweep_on_dask_then_a_local_rerun_is_all_cached(
    client: Any, tmp_path: Path, local_scores: Any
) -> None:
    """Level 4: the sweep runs on Dask; a local runner on the same store then sends nothing."""
    from pytest_themis.api import parse_model
    from pytest_themis.evaluation import get_extractor, get_metric
    from pytest_themis.evaluation.pipeline import EvaluationPipeline
    from pytest_themis.experiment.cache_manager import CacheManager
    from pytest_themis.experiment.manifest import strip_volatile
    from pytest_themis.experiment.orchestrator import ExperimentOrchestrator
    from pytest_themis.generation.plan import GenerationPlan
    from pytest_themis.generation.runner import GenerationRunner
    from pytest_themis.generation.templates import PromptTemplate

    plan = GenerationPlan(
        templates=[PromptTemplate(f"prompt{i}", p) for i, p in enumerate(GRID["prompt"])],
        models=[parse_model(m) for m in GRID["model"]],
        reference_field="a",
    )

    def sweep(runner: GenerationRunner) -> ExperimentReport:
        pipeline = EvaluationPipeline(
            extractor=get_extractor("identity"), metrics=[get_metric("exact_match")]
        )
        cache = CacheManager(str(tmp_path / "store"))
        return ExperimentOrchestrator(plan, runner, pipeline, cache).run(ROWS)

    backend = DaskExecutionBackend(client)
    try:
        on_dask = sweep(GenerationRunner(execution_backend=backend))
    finally:
        backend.shutdown()
    again = sweep(GenerationRunner())
    assert per_sample(on_dask) == per_sample(again) == local_scores
    assert all(c.generated == len(ROWS) and c.cached == 0 for c in on_dask.cells.values())
    assert all(c.cached == len(ROWS) and c.generated == 0 for c in again.cells.values())
    assert strip_volatile(on_dask.manifest)["cells"] == strip_volatile(again.manifest)["cells"]


def _kill_when_stalled(folder: Path, victim: int, killed: list[int]) -> threading.Thread:
    def run() -> None:
        poll(lambda: (folder / f"stalled-{victim}").exists(), 120, "the victim to take a batch")
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _run_with_a_killed_worker(
    backend: DaskExecutionBackend, victim: int, tmp_path: Path
) -> tuple[ExperimentReport, StallingModel]:
    model = StallingModel(str(tmp_path), delay=0.005)
    (tmp_path / f"stall-{victim}").touch()
    killed: list[int] = []
    killer = _kill_when_stalled(tmp_path, victim, killed)
    try:
        report = evaluate(
            dataset=ROWS,
            model=model,
            prompt="{q}",
            reference_field="a",
            metrics=["exact_match"],
            storage=str(tmp_path / "cache"),
            max_parallel=8,
            execution_backend=backend,
        )
    finally:
        backend.shutdown()
    killer.join(timeout=5)
    assert killed == [victim]
    return report, model


def _assert_complete_once(report: ExperimentReport, model: StallingModel, victim: int) -> None:
    scores = per_sample(report)  # no error, none twice
    assert {row for _, row, _ in scores} == {r["id"] for r in ROWS}
    assert all(s == {"ExactMatch": 0.0} for s in scores.values())  # reversed text: all wrong
    calls = model.calls()
    stalled = [prompt for pid, prompt in calls if pid == victim]
    assert stalled, "the victim never ran a call"
    # The victim's unfinished batch ran again elsewhere, yet every row was scored once.
    redone = Counter(prompt for _, prompt in calls)
    assert all(redone[prompt] >= 2 for prompt in stalled)


def test_killed_worker_is_resubmitted_by_the_dispatcher(tmp_path: Path) -> None:
    # allowed-failures 0: Dask gives up on a task at its first dead worker (KilledWorker), so
    # the backend's own resubmission is what completes the run.
    with local_cluster(2, {"distributed.scheduler.allowed-failures": 0}) as client:
        victim = sorted(client.run(os.getpid).values())[0]
        backend = DaskExecutionBackend(client, batch_size=4)
        report, model = _run_with_a_killed_worker(backend, victim, tmp_path)
        assert backend.resubmitted >= 1
    _assert_complete_once(report, model, victim)


def test_subprocess_cluster_by_address(tmp_path: Path, local_scores: Any) -> None:
    """Scores equal a local run; then a worker killed mid-run (no nanny: it stays dead) loses
    nothing — Dask reschedules its batch on the other worker."""
    logs = tmp_path / "logs"
    logs.mkdir()
    with subprocess_cluster(logs, n_workers=2) as cluster:
        port = cluster.address.rsplit(":", 1)[1]
        backend = resolve_execution_backend(f"dask://127.0.0.1:{port}")
        assert isinstance(backend, DaskExecutionBackend)
        try:
            report = evaluate(dataset=ROWS, execution_backend=backend, **GRID)
            assert backend.describe()["workers"] == 2
        finally:
            backend.shutdown()
        assert backend.client is None  # the backend made this client, and closed it
        assert per_sample(report) == local_scores

        backend = DaskExecutionBackend(cluster.address)
        backend.open()
        victim = sorted(backend.client.run(os.getpid).values())[0]
        assert victim in cluster.pids
        report, model = _run_with_a_killed_worker(backend, victim, tmp_path)
        assert [w.pid for w in cluster.workers if w.poll() is not None] == [victim]
    _assert_complete_once(report, model, victim)


def test_scheduler_without_workers_fails_before_any_request(tmp_path: Path) -> None:
    model = StallingModel(str(tmp_path))
    with subprocess_cluster(tmp_path, n_workers=0) as cluster:
        backend = DaskExecutionBackend(cluster.address, connect_timeout=1)
        with pytest.raises(ConfigurationError) as info:
            evaluate(
                dataset=ROWS,
                model=model,
                prompt="{q}",
                reference_field="a",
                metrics=["exact_match"],
                storage=None,
                execution_backend=backend,
            )
        backend.shutdown()
    message = str(info.value)
    assert message == (
        f"the Dask scheduler at {cluster.address} has no workers; "
        f"start some with `dask worker {cluster.address}`"
    )
    assert model.calls() == []
