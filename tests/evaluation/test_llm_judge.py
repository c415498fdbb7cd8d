"""LLMJudge end to end against the local OpenAI-compatible server, with a judge that rules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pytest_themis import evaluate
from pytest_themis.errors import ConfigurationError
from pytest_themis.evaluation.extractors import IdentityExtractor
from pytest_themis.evaluation.metrics.exact_match import ExactMatch
from pytest_themis.evaluation.metrics.llm_judge import LLMJudge, judge_pairwise
from pytest_themis.evaluation.pipeline import EvaluationPipeline
from pytest_themis.testing import FaultPlan, OpenAIServer

ROWS = [{"id": f"r{i}", "question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(6)]


def rule_judge(messages: list[dict[str, Any]], request: dict[str, Any]) -> str:
    """Grades 5 when the response holds the reference answer, 1 otherwise; refuses on 'r5'."""
    prompt = messages[-1]["content"]
    if "You are comparing" in prompt:
        reference = re.search(r"Reference answer:\n(\S+)", prompt).group(1)
        first = prompt.split("Response 1:\n")[1].split("\n\nResponse 2:")[0]
        return "Response 1 is right.\nWinner: 1" if reference in first else "Winner: 2"
    response = prompt.split("Response to grade:\n")[1].split("\n\nRubric:")[0]
    if "What is 5 + 5" in prompt:
        return "I would rather not grade this."
    reference = re.search(r"Reference answer:\n(\S+)", prompt).group(1)
    return "It matches.\nScore: 5" if reference in response else "It does not.\nScore: 1"


def app(prompt: str) -> str:
    a = int(re.search(r"What is (\d+)", prompt).group(1))
    return str(2 * a) if a % 2 == 0 else str(2 * a + 1)  # odd rows are wrong


def _judge(server: OpenAIServer, **kwargs: Any) -> LLMJudge:
    return LLMJudge(
        model="openai/judge-model",
        rubric="Score 5 if the response equals the reference answer, else 1.",
        scale=(1, 5),
        reference_field="answer",
        api_base=server.url,
        api_key="sk-judge-canary",
        **kwargs,
    )


def _run(server: OpenAIServer, tmp_path: Path, judge: LLMJudge) -> Any:
    pipeline = EvaluationPipeline(extractor=IdentityExtractor(), metrics=[ExactMatch(), judge])
    return evaluate(
        dataset=ROWS,
        model=app,
        prompt="{question}",
        reference_field="answer",
        evaluation_pipeline=pipeline,
        storage=tmp_path / "cache",
    )


def test_judge_scores_caches_and_counts_its_errors(tmp_path: Path) -> None:
    with OpenAIServer(responder=rule_judge) as server:
        report = _run(server, tmp_path, _judge(server))
        asked = server.request_count
        assert asked == len(ROWS)
        by_row = {r.row_id: r for r in report.records}
        assert by_row["r0"].scores["LLMJudge"].value == 1.0  # right: verdict 5 of 1..5
        assert by_row["r1"].scores["LLMJudge"].value == 0.0  # wrong: verdict 1
        assert by_row["r2"].scores["LLMJudge"].details["verdict"] == 5.0
        assert "It matches" in by_row["r2"].scores["LLMJudge"].details["reasoning"]
        # An unreadable verdict is a judge error, never a score.
        assert "LLMJudge" not in by_row["r5"].scores
        assert "Score: N" in by_row["r5"].metric_errors["LLMJudge"]
        agg = report.evaluation_report.metrics["LLMJudge"]
        assert agg.count == 5 and agg.mean == pytest.approx(3 / 5)
        assert report.evaluation_report.metric_errors == 1
        # A rerun asks the judge nothing: its answers are cached under their own keys.
        again = _run(server, tmp_path, _judge(server))
        assert server.request_count == asked
        assert again.records[0].scores["LLMJudge"].details["judge_cached"] is True
        assert "sk-judge-canary" not in repr(again.manifest)


def test_judge_failures_are_errors_not_scores(tmp_path: Path) -> None:
    plan = FaultPlan(status_for_model={"judge-model": 500})
    with OpenAIServer(plan=plan, responder=rule_judge) as server:
        judge = _judge(server)
        judge._runner = None
        report = _run(server, tmp_path, judge)
    assert all("LLMJudge" not in r.scores for r in report.records)
    assert report.evaluation_report.metric_errors == len(ROWS)
    assert report.evaluation_report.metrics["ExactMatch"].count == len(ROWS)


def test_pairwise_asks_both_orders_and_averages(tmp_path: Path) -> None:
    with OpenAIServer(responder=rule_judge) as server:
        judge = _judge(server)
        right = evaluate(
            dataset=ROWS,
            model=lambda p: str(2 * int(re.search(r"(\d+)", p).group(1))),
            prompt="{question}",
            reference_field="answer",
            metrics=["exact_match"],
            storage=tmp_path / "a",
        )
        wrong = evaluate(
            dataset=ROWS,
            model=lambda p: "no idea",
            prompt="{question}",
            reference_field="answer",
            metrics=["exact_match"],
            storage=tmp_path / "b",
        )
        result = judge_pairwise(right.records, wrong.records, judge)
        prompts = list(server.stats.arrivals_by_prompt())
    assert result.win_rate == 1.0
    assert len(prompts) == 2 * len(ROWS)  # every row judged as (a, b) and as (b, a)
    assert all(orders == ("1", "2") for orders in result.orders.values())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rubric": "Be strict."}, "needs a scale"),
        ({"rubric": "", "scale": (1, 5)}, "needs a rubric"),
        ({"rubric": "Be strict.", "scale": (5, 1)}, "low < high"),
    ],
)
def test_bad_judge_configuration_is_a_clear_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        LLMJudge(model="openai/judge-model", **kwargs)


def test_judge_tokens_reach_the_manifest_and_the_metric_is_registered(tmp_path: Path) -> None:
    from pytest_themis.evaluation import get_metric

    with OpenAIServer(responder=rule_judge) as server:
        report = _run(server, tmp_path, _judge(server))
        cells = report.manifest["cells"]
        usage = cells[0]["scoring_usage"] if isinstance(cells, list) else None
        assert usage is not None and usage["tokens"] > 0
        assert cells[0]["metric_errors"] == 1
        judge = get_metric(
            "llm_judge", model="openai/judge-model", rubric="r", scale=(1, 5), api_base=server.url
        )
        assert isinstance(judge, LLMJudge)
