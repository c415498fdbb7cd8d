"""GenerationRunner: bounded concurrency, retry classification, Retry-After, budgets, backends."""

from __future__ import annotations

import asyncio
import time

import pytest
from engine_support import ScriptedProvider

from pytest_themis.backends import (
    ExecutionBackend,
    InProcessExecutionBackend,
    LocalExecutionBackend,
    SequentialExecutionBackend,
)
from pytest_themis.core.entities import ModelSpec, SamplingConfig
from pytest_themis.errors import (
    AuthenticationError,
    ConfigurationError,
    RateLimitError,
    ServerError,
)
from pytest_themis.generation.plan import GenerationPlan
from pytest_themis.generation.router import ProviderRouter
from pytest_themis.generation.runner import GenerationRunner
from pytest_themis.generation.templates import PromptTemplate


def _tasks(rows, n_models=1):
    plan = GenerationPlan(
        [PromptTemplate("p", "{q}")],
        [ModelSpec(f"m{i}", "scripted") for i in range(n_models)],
        [SamplingConfig()],
        reference_field="gold",
    )
    return list(plan.iter_tasks(plan.prepare(rows)))


def _runner(provider, **kw):
    kw.setdefault("retry_base_delay", 0.001)
    return GenerationRunner(ProviderRouter({"scripted": provider}), **kw)


def test_all_tasks_complete_with_bounded_concurrency(rows):
    provider = ScriptedProvider(delay=0.01)
    records = list(_runner(provider, max_parallel=5).run(_tasks(rows)))
    assert len(records) == 50 and all(r.ok for r in records)
    assert 1 < provider.max_in_flight <= 5
    assert sorted(r.task.row_id for r in records) == sorted(r["id"] for r in rows)


def test_tasks_are_pulled_lazily(rows):
    provider = ScriptedProvider(delay=0.05)
    pulled = []

    def stream():
        for task in _tasks(rows):
            pulled.append(task)
            yield task

    gen = _runner(provider, max_parallel=4).run(stream())
    first = next(gen)
    assert first.ok
    # When the first answer is out, only about one window of tasks has been pulled.
    assert len(pulled) <= 2 * 4 + 1
    gen.close()


def test_transient_errors_are_retried_until_success(rows):
    def script(task, attempt):
        if attempt < 3:
            raise ServerError("503 from upstream", status_code=503)

    provider = ScriptedProvider(script)
    records = list(_runner(provider, max_retries=3).run(_tasks(rows[:5])))
    assert all(r.ok and r.attempts == 3 for r in records)
    assert provider.total_calls == 15


def test_transient_errors_become_error_records_after_last_attempt(rows):
    def script(task, attempt):
        raise ServerError("always down", status_code=500)

    provider = ScriptedProvider(script)
    records = list(_runner(provider, max_retries=2).run(_tasks(rows[:3])))
    assert [r.error.kind for r in records] == ["transient"] * 3
    assert all(r.attempts == 3 and r.text is None for r in records)
    assert "after 3 attempts" in records[0].error.message


def test_permanent_errors_are_not_retried(rows):
    def script(task, attempt):
        raise AuthenticationError("credentials rejected for model m0", status_code=401)

    provider = ScriptedProvider(script)
    records = list(_runner(provider, max_retries=5).run(_tasks(rows[:4])))
    assert provider.total_calls == 4
    assert all(r.error.kind == "permanent" and r.error.status_code == 401 for r in records)


def test_retry_after_is_honoured(rows):
    seen: dict[str, list[float]] = {}

    def script(task, attempt):
        seen.setdefault(task.task_id, []).append(time.monotonic())
        if attempt == 1:
            raise RateLimitError("slow down", status_code=429, retry_after=0.3)

    provider = ScriptedProvider(script)
    records = list(_runner(provider, max_parallel=8).run(_tasks(rows[:8])))
    assert all(r.ok for r in records)
    for times in seen.values():
        assert len(times) == 2 and times[1] - times[0] >= 0.3


def test_unexpected_exception_is_an_error_record(rows):
    def script(task, attempt):
        raise ValueError("bug in user code")

    records = list(_runner(ScriptedProvider(script)).run(_tasks(rows[:2])))
    assert all(
        r.error.type == "ValueError" and "bug in user code" in r.error.message for r in records
    )


def test_budget_stops_new_requests_and_marks_the_rest(rows):
    provider = ScriptedProvider(cost=0.01)
    runner = _runner(provider, max_parallel=1, max_cost_usd=0.05)
    records = list(runner.run(_tasks(rows[:20])))
    sent = [r for r in records if r.ok]
    unsent = [r for r in records if r.error is not None]
    assert len(sent) == 5 and provider.total_calls == 5
    assert len(unsent) == 15 and all(r.error.kind == "budget" for r in unsent)


@pytest.mark.parametrize("backend", [SequentialExecutionBackend(), LocalExecutionBackend(4)])
def test_execution_backends_run_every_task(rows, backend):
    def script(task, attempt):
        if attempt == 1 and task.row_id == "r3":
            raise ServerError("flaky")

    provider = ScriptedProvider(script)
    records = list(_runner(provider, execution_backend=backend).run(_tasks(rows[:10])))
    assert len(records) == 10 and all(r.ok for r in records)
    assert provider.calls[records[0].task.task_id.replace(records[0].task.row_id, "r3")] == 2


def test_the_default_engine_is_the_in_process_backend(rows):
    provider = ScriptedProvider(delay=0.01)
    chosen = _runner(provider, max_parallel=5, processes=1)
    assert len(list(chosen.run(_tasks(rows[:20])))) == 20
    assert type(chosen.last_backend) is InProcessExecutionBackend
    given = _runner(provider, max_parallel=5, execution_backend=InProcessExecutionBackend())
    records = list(given.run(_tasks(rows[20:40])))
    assert len(records) == 20 and all(r.ok for r in records)
    assert 1 < provider.max_in_flight <= 5  # the kernel's async path, with its limit


def test_a_backend_without_run_or_map_unordered_says_so(rows):
    class Empty(ExecutionBackend):
        pass

    runner = _runner(ScriptedProvider(), execution_backend=Empty())
    with pytest.raises(NotImplementedError, match="Empty implements neither"):
        list(runner.run(_tasks(rows[:1])))


def test_auto_concurrency_runs_everything(rows):
    provider = ScriptedProvider(delay=0.005)
    records = list(_runner(provider, max_parallel="auto").run(_tasks(rows)))
    assert len(records) == 50 and all(r.ok for r in records)
    assert provider.max_in_flight > 8  # slow start grew past the initial window


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"max_parallel": 0}, "max_parallel"),
        ({"max_retries": -1}, "max_retries"),
        ({"timeout": 0}, "timeout"),
        ({"max_cost_usd": -1}, "max_cost_usd"),
    ],
)
def test_bad_runner_arguments_are_named(kwargs, word):
    with pytest.raises(ConfigurationError, match=word):
        GenerationRunner(**kwargs)


def test_error_messages_never_carry_the_api_key(rows):
    def script(task, attempt):
        raise AuthenticationError("invalid key sk-canary-0042 for Bearer sk-canary-0042")

    plan = GenerationPlan(
        [PromptTemplate("p", "{q}")],
        [ModelSpec("m0", "scripted", options={"api_key": "sk-canary-0042"})],
        reference_field="gold",
    )
    tasks = list(plan.iter_tasks(plan.prepare(rows[:1])))
    (record,) = _runner(ScriptedProvider(script)).run(tasks)
    assert "sk-canary-0042" not in record.error.message and "***" in record.error.message


class _HangingProvider(ScriptedProvider):
    """Answers ``0+0`` at once; every other request hangs until cancelled."""

    async def agenerate(self, task, *, timeout=None):
        self.in_flight += 1
        try:
            if task.prompt_text != "0+0":
                await asyncio.sleep(3600)
            return self._answer(task)
        finally:
            self.in_flight -= 1


def test_closing_the_stream_cancels_requests_in_flight_within_a_second(rows):
    provider = _HangingProvider()
    batches = _runner(provider, max_parallel=8, processes=1).run_batches(_tasks(rows))
    first = next(batches)
    assert [r.task.prompt_text for r in first] == ["0+0"]
    deadline = time.monotonic() + 5.0
    while provider.in_flight < 8 and time.monotonic() < deadline:
        time.sleep(0.01)  # the freed slot is refilled: a full window hangs at the provider
    assert provider.in_flight == 8
    started = time.perf_counter()
    batches.close()  # what Ctrl-C in the consumer does too (the generator's finally runs)
    assert time.perf_counter() - started < 1.0
    deadline = time.monotonic() + 1.0
    while provider.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)  # polling a condition with a deadline
    assert provider.in_flight == 0
