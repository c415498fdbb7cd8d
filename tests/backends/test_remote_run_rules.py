"""Ray and Dask workers follow the run's rules: the run's ``client=``, fail-fast on an endpoint
that never answers, and no more requests once the driver stops reading the records."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.dask_cluster import local_cluster, poll
from support.ray_cluster import local_ray
from support.services import free_port

from pytest_themis.backends.dask import DaskExecutionBackend
from pytest_themis.backends.execution import ExecutionBackend
from pytest_themis.backends.ray import RayExecutionBackend
from pytest_themis.core.entities import GenerationTask, ModelSpec, SamplingConfig
from pytest_themis.generation.failfast import DEFAULT_THRESHOLD
from pytest_themis.generation.plan import GenerationPlan
from pytest_themis.generation.runner import GenerationRunner
from pytest_themis.generation.templates import PromptTemplate
from pytest_themis.testing import FaultPlan, OpenAIServer

pytestmark = pytest.mark.slow

WORKERS = 2


def tasks_for(api_base: str, models: list[str], rows: int) -> list[GenerationTask]:
    """One task per (row, model), rows interleaved across models, for OpenAI-compatible models."""
    specs = [ModelSpec(f"openai/{m}", "litellm", options={"api_base": api_base}) for m in models]
    plan = GenerationPlan([PromptTemplate("p", "{q}")], specs, [SamplingConfig(max_tokens=8)])
    data = plan.prepare([{"id": f"r{i}", "q": f"Question {i}"} for i in range(rows)])
    by_cell = [list(plan.iter_tasks(data, [cell])) for cell in plan.cells]
    return [task for group in zip(*by_cell, strict=True) for task in group]


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    with local_cluster(n_workers=WORKERS) as client:
        yield client


@pytest.mark.parametrize("client", ["litellm", "native"])
def test_dask_workers_send_through_the_runs_client(dask_client: Any, client: str) -> None:
    # The server refuses the model; litellm's client names itself in the error it raises.
    with OpenAIServer(FaultPlan(status_for_model={"refused": 400})) as server:
        tasks = tasks_for(server.url, ["refused"], rows=6)
        backend = DaskExecutionBackend(dask_client)
        runner = GenerationRunner(client=client, execution_backend=backend)
        try:
            records = [r for batch in runner.run_batches(tasks) for r in batch]
        finally:
            backend.shutdown()
        assert server.stats.request_count == len(tasks)
    assert len(records) == len(tasks)
    assert {r.error.type for r in records if r.error} == {"BadRequestError"}
    from_litellm = {"litellm.BadRequestError" in r.error.message for r in records if r.error}
    assert from_litellm == {client == "litellm"}


def test_dask_workers_fail_fast_on_a_closed_port(dask_client: Any) -> None:
    tasks = tasks_for(f"http://127.0.0.1:{free_port()}/v1", ["gone"], rows=120)
    backend = DaskExecutionBackend(dask_client)
    runner = GenerationRunner(
        execution_backend=backend, max_parallel=8, max_retries=3, retry_base_delay=0.01
    )
    try:
        records = [r for batch in runner.run_batches(tasks) for r in batch]
    finally:
        backend.shutdown()
    assert len(records) == len(tasks) and all(r.error is not None for r in records)
    skipped = [r for r in records if r.error and r.error.type == "FailFastError"]
    # Each worker process trips after DEFAULT_THRESHOLD connection failures; every other row
    # is skipped unsent instead of being retried max_retries times.
    assert len(skipped) >= len(tasks) - WORKERS * DEFAULT_THRESHOLD
    assert "failed to connect" in skipped[0].error.message


def _last_arrival(server: OpenAIServer) -> float:
    arrivals = server.stats.arrivals
    return arrivals[-1][0] if arrivals else 0.0


def _stops_sending_when_the_stream_is_closed(backend: ExecutionBackend) -> None:
    """Half the tasks are answered, half are refused with a 500 and retried (almost) forever;
    once the driver closes the record stream, the workers must stop retrying."""
    plan = FaultPlan(status_for_model={"flaky": 500})
    with OpenAIServer(plan) as server:
        tasks = tasks_for(server.url, ["fine", "flaky"], rows=20)
        runner = GenerationRunner(
            execution_backend=backend,
            max_parallel=4,
            max_retries=10_000,
            retry_base_delay=0.05,
            retry_max_delay=0.1,
        )
        stream = runner.run_batches(tasks)
        first = next(stream)  # an answered task; the refused ones are retrying meanwhile
        assert first and all(r.error is None for r in first)
        poll(
            lambda: server.stats.outcome_counts["status_500"] >= 10,
            timeout=60,
            what="the refused tasks to be retried",
        )
        stream.close()
        closed = time.monotonic()
        # Quiet for a second (retries come every 0.1 s at most) within a deadline.
        poll(
            lambda: time.monotonic() - max(_last_arrival(server), closed) > 1.0,
            timeout=15,
            what="the workers to stop sending after the stream was closed",
        )
    backend.shutdown()


def test_closing_the_stream_stops_dask_workers(dask_client: Any) -> None:
    _stops_sending_when_the_stream_is_closed(DaskExecutionBackend(dask_client, batch_size=1))


def test_closing_the_stream_stops_ray_actors() -> None:
    with local_ray():
        _stops_sending_when_the_stream_is_closed(RayExecutionBackend(actors=WORKERS, batch_size=1))
