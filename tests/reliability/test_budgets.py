"""Cost budget (--themis-max-cost-usd / max_cost_usd) and error budget (--themis-max-errors)."""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_support import TEMPLATE, marker_test, read_json, rows, write_jsonl

from pytest_themis import evaluate
from pytest_themis.testing import FaultPlan, OpenAIServer

pytestmark = pytest.mark.timeout(120)

#: litellm prices this model, so the server's usage turns into dollars.
PRICED = "openai/gpt-4o-mini"


def _evaluate(url: str, n: int, cache: Path, budget: float | None) -> object:
    return evaluate(
        dataset=rows(n),
        model=PRICED,
        api_base=url,
        prompt=TEMPLATE,
        reference_field="gold",
        metrics=["exact_match"],
        extractor="gsm8k",
        max_parallel=1,
        max_cost_usd=budget,
        storage=cache,
    )


def test_spent_budget_stops_new_requests_and_keeps_finished_work(tmp_path: Path) -> None:
    n = 20
    with OpenAIServer() as server:
        report = _evaluate(server.url, n, tmp_path / "cache", 1e-5)
        sent = server.stats.request_count
        costs = [r.generation.cost for r in report.records if r.generation.ok]
        assert costs and all(c and c > 0 for c in costs)
        # One request at a time: exactly the requests that fit the budget were sent.
        per_request = costs[0]
        assert sent == len(costs) == -(-1e-5 // per_request) < n
        cell = next(iter(report.cells.values()))
        assert cell.incomplete and cell.errors == n - sent
        for record in report.records[sent:]:
            error = record.generation.error
            assert error is not None and error.type == "BudgetExceededError"
            assert "budget" in error.message and "max_cost_usd" in error.message
        assert report.manifest["cells"][0]["incomplete"] is True
        assert report.manifest["totals"]["incomplete_cells"] == 1

        # The finished generations were kept: a run with room to finish sends only the rest.
        server.reset_stats()
        again = _evaluate(server.url, n, tmp_path / "cache", None)
        assert server.stats.request_count == n - sent
    assert sum(r.generation.cached for r in again.records) == sent
    assert again.evaluation_report.errors == 0
    assert again.manifest["cells"][0]["incomplete"] is False


@pytest.mark.slow  # prestarts worker processes on purpose (a command-line litellm model)
def test_budget_through_the_pytest_door(door: pytest.Pytester) -> None:
    n = 10
    write_jsonl(door.path / "data.jsonl", rows(n))
    door.makepyfile(test_budget=marker_test([PRICED], n))
    with OpenAIServer() as server:
        result = door.runpytest(
            "-p", "no:cacheprovider", f"--themis-api-base={server.url}",
            "--themis-cache-dir=cache", "--themis-manifest=manifest.json",
            "--themis-max-parallel=1", "--themis-max-cost-usd=0.00001",
            f"--themis-model={PRICED}",  # a command-line litellm model prestarts worker processes
        )  # fmt: skip
        sent = server.stats.request_count
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*budget of $1e-05 was spent*--themis-max-cost-usd*"])
        manifest = read_json(door.path / "manifest.json")
        assert manifest["cells"][0]["incomplete"] is True
        assert 0 < sent < n
        assert manifest["cells"][0]["counts"]["errors"] == n - sent

        server.reset_stats()
        result = door.runpytest(
            "-p", "no:cacheprovider", f"--themis-api-base={server.url}",
            "--themis-cache-dir=cache", "--themis-manifest=manifest.json",
        )  # fmt: skip
        result.assert_outcomes(passed=1)
        assert server.stats.request_count == n - sent  # the paid-for answers were kept


def test_error_budget_fails_or_passes_the_item(door: pytest.Pytester) -> None:
    n = 30
    write_jsonl(door.path / "data.jsonl", rows(n))
    door.makepyfile(test_errors=marker_test(["openai/fake-chat"], n))
    faults = FaultPlan(rate_500=0.2, seed=3)

    def run(cache: str, *extra: str) -> tuple[pytest.RunResult, dict]:
        with OpenAIServer(faults) as server:
            result = door.runpytest(
                "-p", "no:cacheprovider", f"--themis-api-base={server.url}",
                f"--themis-cache-dir={cache}", f"--themis-manifest={cache}.json",
                "--themis-max-retries=0", *extra,
            )  # fmt: skip
        return result, read_json(door.path / f"{cache}.json")

    strict, manifest = run("strict")  # default --themis-max-errors=0
    errors = manifest["totals"]["counts"]["errors"]
    assert 0 < errors < n
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(
        [f"*{errors} of {n} generation(s) failed, more than --themis-max-errors=0 allows*",
         "*ServerError*"]
    )  # fmt: skip

    tolerant, manifest = run("tolerant", f"--themis-max-errors={errors}")
    tolerant.assert_outcomes(passed=1)
    assert manifest["totals"]["counts"]["errors"] == errors
    assert manifest["cells"][0]["counts"]["errors"] == errors
    # The summary table shows the tolerated errors.
    table = [line for line in tolerant.outlines if "fake-chat-ask" in line and "ExactMatch" in line]
    assert table and f" {errors} " in table[0]

    over, _ = run("over", f"--themis-max-errors={errors - 1}")
    over.assert_outcomes(failed=1)
