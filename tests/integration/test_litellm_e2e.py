"""1,600 generations through litellm against the local server, via the Level-4 objects.

Checks counts and scores, that an identical rerun sends no request, and that a run killed with
SIGKILL halfway re-requests only the generations that had not finished.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from support import litellm_e2e as e2e

from pytest_themis.experiment.cache_manager import CacheManager
from pytest_themis.storage import ExperimentStorage
from pytest_themis.testing import FaultPlan, OpenAIServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

TOTAL = e2e.ROWS * 2 * 2 * 2
PER_PROMPT = 2 * 2  # each rendered prompt is sent once per model x sampling config
# A little server latency, so requests overlap the way they do against a real API.
PLAN = FaultPlan(latency=0.05)


def _prompt_of(task: object) -> str:
    return task.messages[-1]["content"]  # type: ignore[attr-defined]


def test_1600_generations_then_identical_rerun_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with OpenAIServer(PLAN, responder=e2e.responder) as server:
        started = time.perf_counter()
        report = e2e.build_orchestrator(server.url, tmp_path / "cache").run(
            dataset=e2e.dataset(), run_id="first", evaluation_batch_size=100
        )
        elapsed = time.perf_counter() - started
        first = server.stats
        server.reset_stats()
        again = e2e.build_orchestrator(server.url, tmp_path / "cache").run(
            dataset=e2e.dataset(), run_id="second", evaluation_batch_size=100
        )
        second = server.stats

    with capsys.disabled():
        print(
            f"\n[litellm e2e] {TOTAL} generations in {elapsed:.1f}s = "
            f"{TOTAL / elapsed:.0f} generations/s (max in flight {first.max_in_flight})"
        )

    assert len(report.records) == TOTAL
    assert all(r.generation.ok for r in report.records)
    assert first.request_count == TOTAL
    assert len(first.requests_by_prompt) == e2e.ROWS * 2
    assert set(first.requests_by_prompt.values()) == {PER_PROMPT}
    assert 1 < first.max_in_flight <= e2e.MAX_PARALLEL
    assert len(report.cells) == 8
    for cell_id, cell in report.cells.items():
        assert cell.total == e2e.ROWS
        expected = 1.0 if cell_id.startswith("model-a") else 0.75
        assert cell.metrics["ExactMatch"].mean == pytest.approx(expected), cell_id
        assert cell.usage.total_tokens > 0

    assert second.request_count == 0
    assert len(again.records) == TOTAL
    assert all(r.generation.cached for r in again.records)
    assert [r.generation.text for r in again.records] == [r.generation.text for r in report.records]


def test_killed_run_resumes_without_re_requesting_finished_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache_dir = tmp_path / "cache"
    script = Path(e2e.__file__)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    with OpenAIServer(PLAN, responder=e2e.responder) as server:
        proc = subprocess.Popen(
            [sys.executable, str(script), server.url, str(cache_dir)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            reached = server.wait_for_requests(TOTAL // 2, timeout=300)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            _, stderr = proc.communicate(timeout=60)
        assert reached, f"the run never reached half way: {stderr.decode()[-2000:]}"
        assert proc.returncode == -signal.SIGKILL
        killed = server.stats

        # What survived the kill, per rendered prompt (public cache API only).
        plan = e2e.build_plan()
        keys = CacheManager(storage=ExperimentStorage(cache_dir))
        storage = keys.storage
        stored: Counter[str] = Counter()
        prompts: set[str] = set()
        for task in plan.iter_tasks(plan.prepare(e2e.dataset())):
            prompts.add(_prompt_of(task))
            if keys.key_for(task) in storage:
                stored[_prompt_of(task)] += 1
        finished = sum(stored.values())
        storage.close()

        server.reset_stats()
        report = e2e.build_orchestrator(server.url, cache_dir).run(
            dataset=e2e.dataset(), run_id="resumed", evaluation_batch_size=100
        )
        resumed = server.stats

    with capsys.disabled():
        print(
            f"\n[litellm e2e] killed after {killed.request_count} requests with {finished} "
            f"generations stored; the resumed run sent {resumed.request_count}"
        )
    assert TOTAL // 2 <= killed.request_count < TOTAL
    assert 0 < finished < TOTAL
    # Nothing is lost to the kill except what was still in flight.
    assert killed.request_count - finished <= 2 * e2e.MAX_PARALLEL
    # The resumed run asks exactly for what was not stored, prompt by prompt.
    assert resumed.request_count == TOTAL - finished
    assert len(prompts) == e2e.ROWS * 2
    expected = Counter({p: PER_PROMPT - stored[p] for p in prompts})
    assert resumed.requests_by_prompt == +expected
    assert len(report.records) == TOTAL
    assert all(r.generation.ok for r in report.records)
    assert sum(r.generation.cached for r in report.records) == finished
