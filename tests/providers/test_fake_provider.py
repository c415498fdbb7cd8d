"""The deterministic offline ``fake`` provider."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from pytest_themis.core.entities import CellSpec, GenerationTask, ModelSpec, SamplingConfig
from pytest_themis.errors import (
    AuthenticationError,
    ConfigurationError,
    ProviderTimeoutError,
    ServerError,
)
from pytest_themis.providers import create_provider
from pytest_themis.providers.fake import FakeProvider, evaluate_arithmetic

DEMO_FILE = (
    Path(__file__).resolve().parents[2] / "pytest_themis" / "presets" / "data" / "demo.jsonl"
)
DEMO_ROWS = [json.loads(line) for line in DEMO_FILE.read_text(encoding="utf-8").splitlines()]


def make_task(
    prompt: str,
    model: str = "fake-math-llm",
    *,
    options: dict | None = None,
    sampling: SamplingConfig | None = None,
    row_id: str = "r0",
    sample_index: int = 0,
) -> GenerationTask:
    spec = ModelSpec(identifier=model, provider="fake", options=options or {})
    cell = CellSpec(model=spec, template_name="t", sampling=sampling or SamplingConfig())
    messages = ({"role": "user", "content": prompt},)
    return GenerationTask(cell=cell, row_id=row_id, sample_index=sample_index, messages=messages)


def demo_prompt(question: str) -> str:
    return f"Solve step by step and end with '#### <number>'.\n\nProblem: {question}"


def final_number(text: str) -> int:
    return int(text.rsplit("####", 1)[1].strip())


def demo_answers(provider: FakeProvider, model: str) -> dict[str, int]:
    return {
        row["id"]: final_number(
            provider.generate(make_task(demo_prompt(row["question"]), model)).text
        )
        for row in DEMO_ROWS
    }


def test_registered_name_builds_an_async_fake() -> None:
    provider = create_provider("fake")
    assert isinstance(provider, FakeProvider)
    assert provider.supports_async is True


def test_same_task_gives_the_same_response_across_instances() -> None:
    task = make_task(demo_prompt(DEMO_ROWS[3]["question"]))
    first = FakeProvider().generate(task)
    second = FakeProvider().generate(task)
    assert first == second


def test_demo_answers_are_gsm8k_style_and_mostly_right() -> None:
    provider = FakeProvider()
    answers = demo_answers(provider, "fake-math-llm")
    gold = {row["id"]: row["answer"] for row in DEMO_ROWS}
    accuracy = sum(answers[k] == gold[k] for k in gold) / len(gold)
    assert 0.7 <= accuracy <= 0.9
    wrong = [k for k in gold if answers[k] != gold[k]]
    assert wrong, "a 20% wrong rate must produce some wrong answers on 50 questions"
    assert all(abs(answers[k] - gold[k]) <= 3 for k in wrong)


def test_wrong_share_is_about_twenty_percent_over_many_names() -> None:
    provider = FakeProvider()
    gold = {row["id"]: row["answer"] for row in DEMO_ROWS}
    wrong = 0
    for index in range(20):
        answers = demo_answers(provider, f"model-{index}")
        wrong += sum(answers[k] != gold[k] for k in gold)
    assert 0.16 <= wrong / (20 * len(gold)) <= 0.24


def test_different_names_make_different_mistakes() -> None:
    provider = FakeProvider()
    gold = {row["id"]: row["answer"] for row in DEMO_ROWS}
    mistakes = {
        name: {k for k, v in demo_answers(provider, name).items() if v != gold[k]}
        for name in ("fake-math-llm", "fake-other-llm")
    }
    assert mistakes["fake-math-llm"] != mistakes["fake-other-llm"]


def test_wrong_rate_option_and_task_options_override_provider_options() -> None:
    gold = {row["id"]: row["answer"] for row in DEMO_ROWS}
    always_right = FakeProvider(wrong_rate=0.0)
    assert demo_answers(always_right, "fake-math-llm") == gold
    always_wrong = FakeProvider(wrong_rate=1.0)
    answers = demo_answers(always_wrong, "fake-math-llm")
    assert all(answers[k] != gold[k] for k in gold)
    # the task's ModelSpec.options win over the provider's options
    row = DEMO_ROWS[0]
    task = make_task(demo_prompt(row["question"]), options={"wrong_rate": 0.0})
    assert final_number(always_wrong.generate(task).text) == row["answer"]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("2+2", "4"),
        ("What is 7*6?", "42"),
        ("  (3 + 4) * 2 = ", "14"),
        ("7/2", "3.5"),
        ("2**10", "1024"),
        ("Think step-by-step. 2+2", "4"),
        ("calculate: 10 - 3 * 3", "1"),
    ],
)
def test_arithmetic_prompts_get_just_the_number_from_the_oracle(prompt: str, expected: str) -> None:
    response = FakeProvider(wrong_rate=1.0).generate(make_task(prompt, "fake-oracle"))
    assert response.text == expected


@pytest.mark.parametrize(
    "prompt",
    [
        "__import__('os').getcwd()",
        "1/0",
        "9**9**9",
        "2 + x",
        "What is love?",
        "42",
    ],
)
def test_non_arithmetic_or_unsafe_prompts_are_echoed(prompt: str) -> None:
    assert evaluate_arithmetic(prompt) is None
    response = FakeProvider().generate(make_task(prompt))
    assert response.text == f"fake answer to: {prompt[:40]}"


def test_arithmetic_answers_are_wrong_at_the_configured_rate() -> None:
    provider = FakeProvider()
    expressions = [f"{a}+{b}" for a in range(20) for b in range(10)]
    wrong = sum(
        provider.generate(make_task(expr, "fake-math-llm")).text != str(add_up(expr))
        for expr in expressions
    )
    assert 0.12 <= wrong / len(expressions) <= 0.28


def add_up(expr: str) -> int:
    a, b = expr.split("+")
    return int(a) + int(b)


def test_other_prompts_get_a_deterministic_echo() -> None:
    prompt = "Write a haiku about continuous integration pipelines, please."
    response = FakeProvider().generate(make_task(prompt))
    assert response.text == "fake answer to: " + prompt[:40]


def test_usage_counts_whitespace_tokens_and_costs_nothing() -> None:
    prompt = "Tell me something   about\nthe sea"
    response = FakeProvider().generate(make_task(prompt))
    assert response.usage is not None
    assert response.usage.prompt_tokens == 6
    assert response.usage.completion_tokens == len(response.text.split())
    assert response.cost == 0.0
    assert response.finish_reason == "stop"


def test_max_tokens_truncates_with_finish_reason_length() -> None:
    task = make_task(demo_prompt(DEMO_ROWS[0]["question"]), sampling=SamplingConfig(max_tokens=3))
    response = FakeProvider().generate(task)
    assert response.text == "Let me work"
    assert response.finish_reason == "length"
    assert response.usage is not None and response.usage.completion_tokens == 3


def test_stop_sequence_cuts_the_answer() -> None:
    task = make_task(demo_prompt(DEMO_ROWS[0]["question"]), sampling=SamplingConfig(stop=("####",)))
    response = FakeProvider().generate(task)
    assert "####" not in response.text
    assert response.text.startswith("Let me work")


def test_fail_rate_raises_server_errors_for_a_stable_share_of_tasks() -> None:
    provider = FakeProvider(fail_rate=0.3)

    def failures() -> set[str]:
        failed = set()
        for index in range(200):
            task = make_task("hello", row_id=f"row-{index}")
            try:
                provider.generate(task)
            except ServerError as exc:
                assert exc.transient is True
                assert f"row-{index}" in str(exc)
                failed.add(task.row_id)
        return failed

    first = failures()
    assert 0.2 <= len(first) / 200 <= 0.4
    assert failures() == first


def test_error_auth_always_raises_authentication_error() -> None:
    provider = FakeProvider(error="auth")
    with pytest.raises(AuthenticationError, match="fake-math-llm"):
        provider.generate(make_task("2+2"))
    with pytest.raises(AuthenticationError):
        asyncio.run(provider.agenerate(make_task("2+2")))


def test_error_option_from_model_spec_options() -> None:
    with pytest.raises(AuthenticationError):
        FakeProvider().generate(make_task("2+2", options={"error": "auth"}))


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"wrong_rate": 1.5}, "wrong_rate"),
        ({"fail_rate": -0.1}, "fail_rate"),
        ({"latency": "slow"}, "latency"),
        ({"error": "boom"}, "error"),
        ({"wrong_rte": 0.1}, "wrong_rte"),
    ],
)
def test_invalid_options_are_configuration_errors_naming_the_option(
    options: dict, named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        create_provider("fake", **options)


def test_invalid_task_option_is_reported_with_the_model_name() -> None:
    with pytest.raises(ConfigurationError, match="wrong_rate.*fake-math-llm|fake-math-llm.*wrong"):
        FakeProvider().generate(make_task("2+2", options={"wrong_rate": 7}))


def test_agenerate_matches_generate_without_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_threads(*args: object, **kwargs: object) -> None:
        raise AssertionError("agenerate must not use a thread")

    monkeypatch.setattr(asyncio, "to_thread", no_threads)
    provider = FakeProvider()
    task = make_task(demo_prompt(DEMO_ROWS[5]["question"]))
    assert asyncio.run(provider.agenerate(task)) == provider.generate(task)


def test_async_latency_overlaps_on_one_event_loop() -> None:
    provider = FakeProvider(latency=0.2)
    tasks = [make_task(f"{i}+1", row_id=str(i)) for i in range(20)]

    async def run_all() -> list[str]:
        responses = await asyncio.gather(*(provider.agenerate(t) for t in tasks))
        return [r.text for r in responses]

    started = time.perf_counter()
    texts = asyncio.run(run_all())
    elapsed = time.perf_counter() - started
    assert len(texts) == 20
    assert 0.2 <= elapsed < 2.0  # 20 sequential sleeps would take 4 s


def test_latency_longer_than_timeout_raises_timeout_error() -> None:
    provider = FakeProvider(latency=5.0)
    with pytest.raises(ProviderTimeoutError, match="timeout"):
        provider.generate(make_task("2+2"), timeout=0.05)
    with pytest.raises(ProviderTimeoutError):
        asyncio.run(provider.agenerate(make_task("2+2"), timeout=0.05))
