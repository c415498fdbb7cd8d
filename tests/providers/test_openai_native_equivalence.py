"""The native client and litellm are interchangeable: same records, scores and cache keys.

The server draws each fault from ``(seed, request, attempt)``, so two runs of the same rows see
the same faults in the same order per request whichever client sends them; the records (texts,
error kinds, attempts) must then agree one for one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_themis import evaluate
from pytest_themis.experiment.cache_manager import generation_key
from pytest_themis.testing import FaultPlan, OpenAIServer

TEMPLATE = "{question}\nEXPECTED: {said}"
MODELS = ["openai/fake-chat", "openai/locked", "openai/missing"]
FAULTS = FaultPlan(
    rate_429=0.12,
    retry_after=0.05,
    rate_500=0.06,
    rate_503=0.06,
    rate_timeout=0.04,
    timeout_delay=6.0,  # longer than the client timeout: the client gives up first
    rate_reset=0.04,
    rate_malformed=0.04,
    rate_empty_choices=0.04,
    status_for_model={"locked": 401, "missing": 404},
    seed=5,
)


def _rows(n: int) -> list[dict[str, Any]]:
    return [
        {"id": f"r{i:03d}", "question": f"item {i}", "said": i + (i % 4 == 0), "gold": i}
        for i in range(n)
    ]


def _evaluate(url: str, rows: list[dict[str, Any]], storage: Path, client: str, **kw: Any) -> Any:
    settings: dict[str, Any] = dict(
        dataset=rows,
        model=MODELS,
        api_base=url,
        api_key="sk-equivalence-secret",
        prompt=TEMPLATE,
        reference_field="gold",
        metrics=["exact_match"],
        extractor="gsm8k",
        max_parallel=16,
        max_retries=2,
        # Generous, so that on a loaded machine only the injected stalls time out.
        timeout=2.0,
        storage=storage,
        client=client,
    )
    settings.update(kw)
    return evaluate(**settings)


def _summary(report: Any) -> dict[tuple[str, str], tuple[Any, ...]]:
    out = {}
    for record in report.records:
        gen = record.generation
        error = (gen.error.kind, gen.error.type) if gen.error else None
        scores = {name: score.value for name, score in record.scores.items()}
        out[(record.cell_id, record.row_id)] = (
            gen.text,
            error,
            gen.attempts,
            gen.finish_reason,
            gen.usage,
            gen.cached,
            scores,
            generation_key(gen.task),
            gen.task.model.provider,
        )
    return out


@pytest.mark.slow
def test_a_fault_mix_gives_the_same_records_scores_and_keys_through_both_clients(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fail-fast stops the refused model after a number of sends that depends on scheduling;
    # this test compares the clients request for request, so it is off here.
    from pytest_themis.generation.failfast import FailFastExecutor

    monkeypatch.setattr(FailFastExecutor.__init__, "__kwdefaults__", {"threshold": 0})
    rows = _rows(40)
    with OpenAIServer(FAULTS) as server:
        native = _evaluate(server.url, rows, tmp_path / "native", "native")
        native_stats = server.stats
        server.reset_stats()
        reference = _evaluate(server.url, rows, tmp_path / "litellm", "litellm")
        reference_stats = server.stats

    mine, theirs = _summary(native), _summary(reference)
    assert mine.keys() == theirs.keys()
    assert {k: (v, theirs[k]) for k, v in mine.items() if v != theirs[k]} == {}
    assert len(mine) == 3 * len(rows)
    # The run met every fault, and both clients sent the same requests.
    for outcome in ("rate_limit", "error_500", "error_503", "timeout", "reset", "malformed"):
        assert native_stats.outcome_counts[outcome] > 0, outcome
    assert native_stats.outcome_counts == reference_stats.outcome_counts
    assert native_stats.requests_by_prompt == reference_stats.requests_by_prompt
    errors = {summary[1] for summary in mine.values()}
    assert ("permanent", "AuthenticationError") in errors
    assert ("permanent", "ModelNotFoundError") in errors
    assert any(e is not None and e[0] == "transient" for e in errors)  # retries ran out
    assert any(s[1] is None and s[2] > 1 for s in mine.values())  # retried, then answered
    # The key names the provider, not the client.
    assert all(s[-1] == "litellm" for s in mine.values())
    for cell_id, cell in native.cells.items():
        theirs_mean = reference.cells[cell_id].metrics["ExactMatch"].mean
        assert cell.metrics["ExactMatch"].mean == pytest.approx(theirs_mean, nan_ok=True)
        assert cell.errors == reference.cells[cell_id].errors
    assert "sk-equivalence-secret" not in repr(mine)


@pytest.mark.parametrize(("first", "second"), [("native", "litellm"), ("litellm", "native")])
def test_a_cache_filled_by_one_client_is_reused_by_the_other(
    tmp_path: Path, first: str, second: str
) -> None:
    rows = _rows(30)
    with OpenAIServer() as server:
        filled = _evaluate(server.url, rows, tmp_path / "cache", first, model="openai/fake-chat")
        assert server.stats.request_count == len(rows)
        server.reset_stats()
        reused = _evaluate(server.url, rows, tmp_path / "cache", second, model="openai/fake-chat")
        assert server.stats.request_count == 0
    assert all(r.generation.cached for r in reused.records)
    before = {k: v[:2] + v[3:5] + v[6:] for k, v in _summary(filled).items()}
    after = {k: v[:2] + v[3:5] + v[6:] for k, v in _summary(reused).items()}
    assert before == after
