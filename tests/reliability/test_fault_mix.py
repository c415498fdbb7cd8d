"""1,000 generations through litellm while the server injects every kind of transient fault."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from reliability_support import TEMPLATE, prompt_of, rows

from pytest_themis import evaluate
from pytest_themis.testing import FaultPlan, OpenAIServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

N = 1000
RETRY_AFTER = 1.0
FAULTS = FaultPlan(
    rate_429=0.10,
    retry_after=RETRY_AFTER,
    rate_500=0.025,
    rate_503=0.025,
    rate_timeout=0.02,
    timeout_delay=3.0,  # longer than the client timeout below: the client gives up first
    rate_reset=0.01,
    rate_malformed=0.01,
    seed=11,
)


def _run(url: str, data: list[dict[str, Any]], cache: Path) -> tuple[Any, float]:
    started = time.perf_counter()
    report = evaluate(
        dataset=data,
        model="openai/fake-chat",
        api_base=url,
        prompt=TEMPLATE,
        reference_field="gold",
        metrics=["exact_match"],
        extractor="gsm8k",
        max_parallel=64,
        max_retries=8,
        timeout=1.0,
        storage=cache,
    )
    return report, time.perf_counter() - started


def test_every_sample_survives_the_fault_mix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = rows(N)
    with OpenAIServer() as server:
        # Warm up (litellm's first calls are slow) so the two timings compare like with like.
        _run(server.url, rows(64, prefix="warmup"), tmp_path / "warmup")
        server.reset_stats()
        clean, clean_s = _run(server.url, data, tmp_path / "clean")
        assert server.stats.request_count == N
        server.set_plan(FAULTS)
        server.reset_stats()
        faulty, faulty_s = _run(server.url, data, tmp_path / "faulty")
        stats = server.stats

    with capsys.disabled():
        print(
            f"\n[fault mix] {N} generations: fault-free {clean_s:.1f}s, with faults "
            f"{faulty_s:.1f}s (x{faulty_s / clean_s:.2f}); {stats.request_count} requests, "
            f"outcomes {dict(sorted(stats.outcome_counts.items()))}"
        )

    # Every kind of fault really happened, and all were survived.
    for outcome in ("rate_limit", "error_500", "error_503", "timeout", "reset", "malformed"):
        assert stats.outcome_counts[outcome] > 0, outcome
    assert stats.outcome_counts["ok"] == N
    assert len(faulty.records) == N
    assert faulty.evaluation_report.errors == 0
    assert all(r.generation.ok and not r.generation.cached for r in faulty.records)
    assert max(r.generation.attempts for r in faulty.records) > 1

    # Faults change nothing about the answers or the scores.
    assert [r.generation.text for r in faulty.records] == [r.generation.text for r in clean.records]
    assert [r.scores for r in faulty.records] == [r.scores for r in clean.records]
    mean = faulty.evaluation_report.metrics["ExactMatch"].mean
    assert mean == clean.evaluation_report.metrics["ExactMatch"].mean
    assert mean == pytest.approx(2 / 3, abs=0.01)  # every third row is answered wrong

    # No sample is asked again before the Retry-After of its 429 has elapsed.
    arrivals = stats.arrivals_by_prompt()
    assert set(arrivals) == {prompt_of(r) for r in data}
    retried_after_429 = 0
    for prompt, seen in arrivals.items():
        assert [outcome for _, outcome in seen].count("ok") == 1, prompt
        for (t0, outcome), (t1, _) in zip(seen, seen[1:], strict=False):
            if outcome == "rate_limit":
                retried_after_429 += 1
                assert t1 - t0 >= RETRY_AFTER, (prompt, t1 - t0)
    assert retried_after_429 == stats.outcome_counts["rate_limit"]
