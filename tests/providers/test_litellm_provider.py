"""LiteLLMProvider against the local fault-injecting server: results, error mapping, secrets."""

from __future__ import annotations

import asyncio
import copy
import os
import subprocess
import sys
import time
from typing import Any

import litellm  # noqa: E402 - a core dependency: a failed import must fail, not skip
import pytest
from support.responders import recording_responder
from support.services import free_port
from support.tasks import make_task

from pytest_themis.core.entities import SamplingConfig
from pytest_themis.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    MalformedResponseError,
    ModelNotFoundError,
    PermanentProviderError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
    TransientProviderError,
)
from pytest_themis.providers import create_provider
from pytest_themis.providers.litellm_provider import LiteLLMProvider, validate_model
from pytest_themis.testing import FaultPlan, OpenAIServer

CANARY_KEY = "sk-canary-7c1f0e9d4b2a"
CANARY_HEADER = "hdr-canary-5e8d2a61"


def _call(provider: LiteLLMProvider, task: Any, mode: str, timeout: float | None = 10.0) -> Any:
    if mode == "async":
        return asyncio.run(provider.agenerate(task, timeout=timeout))
    return provider.generate(task, timeout=timeout)


@pytest.fixture
def provider(openai_server: OpenAIServer) -> LiteLLMProvider:
    made = create_provider("litellm", api_base=openai_server.url)
    assert isinstance(made, LiteLLMProvider)
    return made


def test_registered_and_async_capable() -> None:
    made = create_provider("litellm")
    assert isinstance(made, LiteLLMProvider)
    assert made.supports_async is True
    made.close()


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_success_returns_text_usage_and_finish_reason(
    openai_server: OpenAIServer, provider: LiteLLMProvider, mode: str
) -> None:
    task = make_task("Count the apples.\nEXPECTED: 12")
    response = _call(provider, task, mode)
    assert response.text == "#### 12"
    assert response.finish_reason == "stop"
    assert response.usage is not None
    assert response.usage.prompt_tokens == 5
    assert response.usage.completion_tokens == 2
    assert response.cost is None  # litellm has no price for "fake-chat"
    assert openai_server.stats.requests_by_prompt == {"Count the apples.\nEXPECTED: 12": 1}


def test_request_carries_sampling_and_no_unset_parameters() -> None:
    seen, responder = recording_responder()

    sampling = SamplingConfig(temperature=0.3, top_p=0.9, max_tokens=77, stop=("END",), seed=5)
    with OpenAIServer(responder=responder) as server:
        provider = create_provider("litellm", api_base=server.url)
        _call(provider, make_task("q", sampling=sampling, system="be brief"), "async")
        _call(provider, make_task("q", sampling=SamplingConfig(max_tokens=None)), "sync")
    full, bare = seen
    assert full["model"] == "fake-chat"
    assert full["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "q"},
    ]
    assert full["temperature"] == 0.3 and full["top_p"] == 0.9 and full["seed"] == 5
    assert full["max_tokens"] == 77 or full.get("max_completion_tokens") == 77
    assert full["stop"] == ["END"]
    assert bare["temperature"] == 0.0
    for absent in ("top_p", "max_tokens", "max_completion_tokens", "stop", "seed"):
        assert absent not in bare


def test_task_options_win_over_provider_options(openai_server: OpenAIServer) -> None:
    dead_base = f"http://127.0.0.1:{free_port()}/v1"
    provider = create_provider("litellm", api_base=dead_base)
    response = _call(provider, make_task("EXPECTED: 1", api_base=openai_server.url), "async")
    assert response.text == "#### 1"
    with pytest.raises(ProviderConnectionError):
        _call(provider, make_task("EXPECTED: 1"), "async")


def test_bare_model_name_with_api_base_needs_no_key(
    openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    provider = create_provider("litellm", base_url=openai_server.url)
    response = _call(provider, make_task("EXPECTED: 4", model="my-local-model"), "async")
    assert response.text == "#### 4"
    assert openai_server.stats.request_count == 1


def test_cost_comes_from_litellm_prices_for_known_models(openai_server: OpenAIServer) -> None:
    provider = create_provider("litellm", api_base=openai_server.url, api_key="sk-local")
    response = _call(provider, make_task("price this answer", model="gpt-4o-mini"), "async")
    prices = litellm.model_cost["gpt-4o-mini"]
    assert response.usage is not None and response.usage.total_tokens > 0
    expected = (
        response.usage.prompt_tokens * prices["input_cost_per_token"]
        + response.usage.completion_tokens * prices["output_cost_per_token"]
    )
    assert response.cost == pytest.approx(expected)
    assert response.cost > 0


def _fault_cases() -> list[Any]:
    model_status = {
        "401": FaultPlan(status_for_model={"fake-chat": 401}),
        "403": FaultPlan(status_for_model={"fake-chat": 403}),
        "400": FaultPlan(status_for_model={"fake-chat": 400}),
        "422": FaultPlan(status_for_model={"fake-chat": 422}),
        "404": FaultPlan(status_for_model={"fake-chat": 404}),
    }
    cases = [
        ("429", FaultPlan(rate_429=1.0, retry_after=2.5), RateLimitError, 429),
        ("500", FaultPlan(rate_500=1.0), ServerError, 500),
        ("503", FaultPlan(rate_503=1.0), ServerError, 503),
        ("502", FaultPlan(status_for_model={"fake-chat": 502}), ServerError, 502),
        ("reset", FaultPlan(rate_reset=1.0), ProviderConnectionError, None),
        ("malformed", FaultPlan(rate_malformed=1.0), MalformedResponseError, None),
        ("empty", FaultPlan(rate_empty_choices=1.0), MalformedResponseError, None),
        ("401", model_status["401"], AuthenticationError, 401),
        ("403", model_status["403"], AuthenticationError, 403),
        ("400", model_status["400"], BadRequestError, 400),
        ("422", model_status["422"], BadRequestError, 422),
        ("404", model_status["404"], ModelNotFoundError, 404),
    ]
    return [pytest.param(*case[1:], id=case[0]) for case in cases]


@pytest.mark.parametrize("mode", ["async", "sync"])
@pytest.mark.parametrize(("plan", "expected", "status"), _fault_cases())
def test_faults_map_to_our_errors_by_type(
    openai_server: OpenAIServer,
    provider: LiteLLMProvider,
    plan: FaultPlan,
    expected: type[ProviderError],
    status: int | None,
    mode: str,
) -> None:
    openai_server.set_plan(plan)
    with pytest.raises(ProviderError) as info:
        _call(provider, make_task(f"fault {mode}", row_id="row-7"), mode)
    error = info.value
    assert type(error) is expected
    if status is not None:
        assert error.status_code == status
    assert error.model == "openai/fake-chat"
    message = str(error)
    assert "openai/fake-chat" in message and "row-7" in message
    assert error.__cause__ is None and error.__context__ is None
    if expected is RateLimitError:
        assert error.retry_after == pytest.approx(2.5)
        assert "2.5s" in message
    if expected is AuthenticationError:
        assert "credentials were rejected" in message
    if expected is ProviderConnectionError:
        assert openai_server.url in message
    is_transient = isinstance(error, TransientProviderError)
    assert is_transient == (status is None or status >= 429)
    assert isinstance(error, PermanentProviderError) == (not is_transient)


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_finish_reason_length_is_a_normal_response(
    openai_server: OpenAIServer, provider: LiteLLMProvider, mode: str
) -> None:
    openai_server.set_plan(FaultPlan(rate_length=1.0))
    response = _call(provider, make_task("EXPECTED: 5"), mode)
    assert response.finish_reason == "length"
    assert response.text == "#### 5"


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_slow_server_raises_timeout_quickly(
    openai_server: OpenAIServer, provider: LiteLLMProvider, mode: str
) -> None:
    openai_server.set_plan(FaultPlan(rate_timeout=1.0, timeout_delay=60.0))
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError) as info:
        _call(provider, make_task("slow"), mode, timeout=0.3)
    assert time.monotonic() - started < 10
    assert info.value.transient
    assert "timeout" in str(info.value)


def test_provider_option_timeout_is_the_default(openai_server: OpenAIServer) -> None:
    openai_server.set_plan(FaultPlan(rate_timeout=1.0, timeout_delay=60.0))
    provider = create_provider("litellm", api_base=openai_server.url, timeout=0.3)
    with pytest.raises(ProviderTimeoutError):
        _call(provider, make_task("slow"), "async", timeout=None)


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_connection_refused_fails_fast_naming_the_api_base(mode: str) -> None:
    api_base = f"http://127.0.0.1:{free_port()}/v1"
    provider = create_provider("litellm", api_base=api_base)
    started = time.monotonic()
    with pytest.raises(ProviderConnectionError) as info:
        _call(provider, make_task("anyone there?"), mode, timeout=30)
    assert time.monotonic() - started < 10
    assert api_base in str(info.value)
    assert "check that the server is running" in str(info.value)
    assert info.value.transient


@pytest.mark.parametrize("mode", ["async", "sync"])
@pytest.mark.parametrize("status", [401, 403])
def test_echoed_credentials_are_redacted(mode: str, status: int) -> None:
    plan = FaultPlan(status_for_model={"fake-chat": status})
    with OpenAIServer(plan) as server:
        provider = create_provider(
            "litellm", api_base=server.url, extra_headers={"X-Team-Token": CANARY_HEADER}
        )
        task = make_task("q", api_key=CANARY_KEY)
        with pytest.raises(AuthenticationError) as info:
            _call(provider, task, mode)
    error = info.value
    text = f"{error}\n{error!r}\n{error.args}"
    assert CANARY_KEY not in text
    assert CANARY_HEADER not in text
    assert "Bearer ***" in str(error)  # the echo was there, and redacted
    assert "openai/fake-chat" in str(error)
    assert error.__cause__ is None and error.__context__ is None
    assert CANARY_KEY not in repr(provider)


def test_environment_keys_are_redacted_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", CANARY_KEY)
    with OpenAIServer(FaultPlan(status_for_model={"fake-chat": 401})) as server:
        provider = create_provider("litellm", api_base=server.url)
        with pytest.raises(AuthenticationError) as info:
            _call(provider, make_task("q"), "async")
    assert CANARY_KEY not in str(info.value)
    assert "***" in str(info.value)


_GLOBALS = (
    "drop_params",
    "num_retries",
    "modify_params",
    "model_alias_map",
    "headers",
    "ssl_verify",
    "request_timeout",
    "suppress_debug_info",
    "set_verbose",
    "api_key",
    "api_base",
    "openai_key",
    "callbacks",
    "input_callback",
    "success_callback",
    "failure_callback",
    "_async_success_callback",
    "_async_failure_callback",
    "cache",
    "default_fallbacks",
)


def _snapshot() -> dict[str, Any]:
    return {name: copy.copy(getattr(litellm, name)) for name in _GLOBALS}


def test_litellm_globals_are_never_mutated(openai_server: OpenAIServer) -> None:
    env_before = dict(os.environ)
    before = _snapshot()
    provider = create_provider(
        "litellm", api_base=openai_server.url, api_key="sk-x", extra_headers={"X-A": "1"}
    )
    _call(provider, make_task("EXPECTED: 1"), "async")
    _call(provider, make_task("EXPECTED: 1"), "sync")
    openai_server.set_plan(FaultPlan(rate_429=1.0, retry_after=0.1))
    with pytest.raises(RateLimitError):
        _call(provider, make_task("busy"), "async")
    provider.validate_model("gpt4o-typo-free/model")
    provider.close()
    assert _snapshot() == before
    assert dict(os.environ) == env_before


def test_validate_model_accepts_resolvable_and_rejects_unknown() -> None:
    for good in ("gpt-4o-mini", "openai/anything", "anthropic/some-model", "ollama/llama3"):
        validate_model(good)
    validate_model("my-local-model", {"api_base": "http://127.0.0.1:1/v1"})
    validate_model("my-local-model", {"custom_llm_provider": "openai"})
    with pytest.raises(ConfigurationError) as info:
        validate_model("gpt4o-typo")
    message = str(info.value)
    assert "'gpt4o-typo'" in message
    assert "openai/gpt4o-typo" in message and "anthropic/gpt4o-typo" in message
    with pytest.raises(ConfigurationError, match="nonsense/model"):
        LiteLLMProvider().validate_model("nonsense/model")
    LiteLLMProvider(api_base="http://127.0.0.1:1/v1").validate_model("nonsense/model")


def test_well_known_prefixes_are_litellm_providers() -> None:
    from pytest_themis.providers.litellm_names import WELL_KNOWN_PREFIXES

    assert WELL_KNOWN_PREFIXES <= set(litellm.provider_list)


def test_retry_after_is_read_from_the_exception_or_its_response() -> None:
    from pytest_themis.providers.litellm_provider import _retry_after

    class Response:
        headers = {"retry-after": "4"}

    class Fake(Exception):
        def __init__(self, headers: dict[str, str]) -> None:
            super().__init__("x")
            self.litellm_response_headers = headers
            self.response = Response()

    assert _retry_after(Fake({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    assert _retry_after(Fake({})) == 4.0  # the exception's own headers name no wait
    assert _retry_after(Exception("no headers")) is None


def test_module_import_does_not_import_litellm() -> None:
    code = (
        "import sys, pytest_themis.providers.litellm_provider as m, pytest_themis.testing as t;"
        "t.OpenAIServer;"
        "assert 'litellm' not in sys.modules and 'openai' not in sys.modules, 'imported';"
        "m.validate_model('openai/gpt-4o-mini');"
        "assert 'litellm' not in sys.modules, 'validate imported litellm'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_runner_honours_retry_after_from_the_provider(openai_server: OpenAIServer) -> None:
    from pytest_themis.generation.router import ProviderRouter
    from pytest_themis.generation.runner import GenerationRunner

    wait = 0.3
    openai_server.set_plan(FaultPlan(rate_429=0.4, retry_after=wait, seed=3))
    provider = create_provider("litellm", api_base=openai_server.url)
    runner = GenerationRunner(
        ProviderRouter({("litellm", "openai/fake-chat"): provider}),
        max_parallel=8,
        max_retries=8,
        retry_base_delay=0.01,
        timeout=10,
    )
    tasks = [make_task(f"row {i}\nEXPECTED: {i}", row_id=str(i)) for i in range(24)]
    records = list(runner.run(tasks))
    runner.close()
    assert all(r.ok for r in records), [r.error for r in records if not r.ok]
    assert sorted(r.text for r in records) == sorted(f"#### {i}" for i in range(24))
    stats = openai_server.stats
    assert stats.outcome_counts["rate_limit"] > 0
    for prompt, arrivals in stats.arrivals_by_prompt().items():
        for (t0, outcome), (t1, _) in zip(arrivals, arrivals[1:], strict=False):
            assert outcome == "rate_limit"
            assert t1 - t0 >= wait, f"{prompt!r} retried {t1 - t0:.3f}s after a 429"
