"""The native OpenAI-compatible client: responses, error classes, secrets, connection reuse.

Each fault is sent through both clients (``openai_native`` and ``litellm``) against the same
fault-injecting server, and the two must raise the same error class, kind and status.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
from support.responders import recording_responder
from support.services import free_port
from support.tasks import make_task

from pytest_themis.core.entities import ModelSpec, ProviderResponse, SamplingConfig
from pytest_themis.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    MalformedResponseError,
    ModelNotFoundError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from pytest_themis.providers import create_provider
from pytest_themis.providers.clients import all_native, check_client, client_for
from pytest_themis.providers.openai_native import OpenAINativeProvider
from pytest_themis.testing import FaultPlan, OpenAIServer

SECRET = "sk-native-secret-4f2a9c"
HEADER_SECRET = "hdr-native-secret-77e1"


def _call(provider_name: str, task: Any, timeout: float = 5.0) -> ProviderResponse | ProviderError:
    provider = create_provider(provider_name)

    async def call() -> ProviderResponse | ProviderError:
        try:
            return await provider.agenerate(task, timeout=timeout)
        except ProviderError as exc:
            return exc
        finally:
            if isinstance(provider, OpenAINativeProvider):
                await provider.aclose()

    try:
        return asyncio.run(call())
    finally:
        provider.close()


FAULTS = [
    ("rate_limit", FaultPlan(rate_429=1.0, retry_after=0.25), RateLimitError, 429),
    ("error_500", FaultPlan(rate_500=1.0), ServerError, 500),
    ("error_503", FaultPlan(rate_503=1.0), ServerError, 503),
    ("timeout", FaultPlan(rate_timeout=1.0, timeout_delay=3.0), ProviderTimeoutError, 408),
    ("reset", FaultPlan(rate_reset=1.0), ProviderConnectionError, None),
    ("empty_choices", FaultPlan(rate_empty_choices=1.0), MalformedResponseError, None),
    ("malformed", FaultPlan(rate_malformed=1.0), MalformedResponseError, None),
    ("status_401", FaultPlan(status_for_model={"m": 401}), AuthenticationError, 401),
    ("status_403", FaultPlan(status_for_model={"m": 403}), AuthenticationError, 403),
    ("status_404", FaultPlan(status_for_model={"m": 404}), ModelNotFoundError, 404),
    ("status_400", FaultPlan(status_for_model={"m": 400}), BadRequestError, 400),
    ("status_422", FaultPlan(status_for_model={"m": 422}), BadRequestError, 422),
    ("status_408", FaultPlan(status_for_model={"m": 408}), ProviderTimeoutError, 408),
]


@pytest.mark.parametrize(
    ("label", "plan", "expected", "status"), FAULTS, ids=[f[0] for f in FAULTS]
)
def test_each_fault_raises_the_same_error_through_both_clients(
    openai_server: OpenAIServer, label: str, plan: FaultPlan, expected: type, status: int | None
) -> None:
    openai_server.set_plan(plan)
    task = make_task(
        "what is 2 + 2?",
        model="openai/m",
        api_base=openai_server.url,
        api_key=SECRET,
        extra_headers={"x-team-token": HEADER_SECRET},
    )
    native = _call("openai_native", task, timeout=1.0)
    assert type(native) is expected, native
    assert isinstance(native, ProviderError)
    assert native.transient is expected.transient
    assert native.model == "openai/m"
    assert SECRET not in str(native) and HEADER_SECRET not in str(native)
    if label == "rate_limit":
        assert native.retry_after == pytest.approx(0.25)
    reference = _call("litellm", task, timeout=1.0)
    assert type(reference) is type(native), (reference, native)
    if expected is not MalformedResponseError:  # litellm reports a bad body as its HTTP 500
        assert native.status_code == reference.status_code == status  # type: ignore[union-attr]
    assert native.retry_after == reference.retry_after  # type: ignore[union-attr]
    assert openai_server.stats.outcome_counts[label] == 2  # one request per client


def test_success_matches_litellm_text_usage_finish_reason_and_cost(
    openai_server: OpenAIServer,
) -> None:
    task = make_task(
        "Add.\nEXPECTED: 17",
        model="openai/gpt-4o-mini",  # priced in litellm's cost map
        sampling=SamplingConfig(max_tokens=64, seed=3, stop=("\n\n",)),
        api_base=openai_server.url,
    )
    reference = _call("litellm", task)
    assert "litellm" in sys.modules
    native = _call("openai_native", task)
    assert isinstance(native, ProviderResponse) and isinstance(reference, ProviderResponse)
    assert native.text == reference.text == "#### 17"
    assert native.usage == reference.usage
    assert native.finish_reason == reference.finish_reason == "stop"
    assert native.cost is not None and native.cost > 0
    assert native.cost == pytest.approx(reference.cost)


def test_length_finish_reason_and_price_options(openai_server: OpenAIServer) -> None:
    task = make_task(
        "one two three four five six",
        model="openai/unpriced-model",
        sampling=SamplingConfig(max_tokens=2),
        api_base=openai_server.url,
        input_cost_per_token=0.5,
        output_cost_per_token=2.0,
    )
    response = _call("openai_native", task)
    assert isinstance(response, ProviderResponse)
    assert response.finish_reason == "length"
    assert response.usage is not None and response.usage.completion_tokens == 2
    expected = 0.5 * response.usage.prompt_tokens + 2.0 * response.usage.completion_tokens
    assert response.cost == pytest.approx(expected)


def test_request_body_carries_sampling_and_extra_body(openai_server: OpenAIServer) -> None:
    seen, responder = recording_responder()

    with OpenAIServer(responder=responder) as server:
        task = make_task(
            "hello",
            model="openai/served-name",
            system="be brief",
            sampling=SamplingConfig(temperature=0.7, top_p=0.9, max_tokens=33, seed=5),
            api_base=server.url,
            extra_body={"top_k": 4},
            presence_penalty=0.25,
        )
        assert isinstance(_call("openai_native", task), ProviderResponse)
    (request,) = seen
    assert request["model"] == "served-name"
    assert request["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello"},
    ]
    assert (request["temperature"], request["top_p"], request["max_tokens"]) == (0.7, 0.9, 33)
    assert (request["seed"], request["top_k"], request["presence_penalty"]) == (5, 4, 0.25)
    assert "api_base" not in request and "extra_body" not in request


def test_connection_refused_is_a_transient_connection_error() -> None:
    task = make_task("hi", api_base=f"http://127.0.0.1:{free_port()}/v1", api_key=SECRET)
    error = _call("openai_native", task)
    assert isinstance(error, ProviderConnectionError) and error.transient
    assert "could not connect" in str(error)


def test_one_keep_alive_connection_serves_sequential_requests(
    openai_server: OpenAIServer,
) -> None:
    provider = create_provider("openai_native")

    async def many() -> list[str]:
        out = []
        for i in range(20):
            task = make_task(f"p{i}", api_base=openai_server.url)
            out.append((await provider.agenerate(task)).text)
        return out

    try:
        texts = asyncio.run(many())
    finally:
        provider.close()  # the loop is gone: the pool is dropped without a coroutine
    assert len(set(texts)) == 20
    assert openai_server.stats.connections == 1
    assert openai_server.stats.request_count == 20


def test_blocking_generate_works_outside_an_event_loop(openai_server: OpenAIServer) -> None:
    provider = create_provider("openai_native")
    try:
        first = provider.generate(make_task("EXPECTED: 4", api_base=openai_server.url))
        second = provider.generate(make_task("EXPECTED: 5", api_base=openai_server.url))
    finally:
        provider.close()
    assert (first.text, second.text) == ("#### 4", "#### 5")
    assert openai_server.stats.connections == 1


def test_the_key_comes_from_openai_api_key_when_not_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with OpenAIServer(FaultPlan(status_for_model={"m": 401})) as server:
        error = _call("openai_native", make_task("hi", model="openai/m", api_base=server.url))
        seen.append(str(error))
    assert isinstance(error, AuthenticationError)
    assert "Bearer ***" in seen[0] and SECRET not in seen[0]


# -- which client serves a model --------------------------------------------------------------


def _spec(identifier: str, **options: Any) -> ModelSpec:
    return ModelSpec(identifier, options=options)


def test_auto_picks_native_only_for_openai_models_with_an_api_base() -> None:
    base = "http://127.0.0.1:9/v1"
    assert client_for(_spec("openai/m", api_base=base)) == "native"
    assert client_for(_spec("openai/m", base_url=base)) == "native"
    assert client_for(_spec("openai/m")) == "litellm"  # api.openai.com stays on litellm
    assert client_for(_spec("anthropic/claude", api_base=base)) == "litellm"
    assert client_for(_spec("openai/m", api_base=base, api_version="1")) == "litellm"
    assert client_for(_spec("openai/m", api_base=base), "litellm") == "litellm"
    assert client_for(ModelSpec("x", provider="fake")) == "fake"


def test_explicit_native_serves_api_openai_com_and_rejects_what_it_cannot_send() -> None:
    assert client_for(_spec("openai/gpt-4o-mini"), "native") == "native"
    with pytest.raises(ConfigurationError, match="anthropic/claude.*client='auto'"):
        client_for(_spec("anthropic/claude"), "native")
    with pytest.raises(ConfigurationError, match="'api_version' need litellm"):
        client_for(_spec("openai/m", api_version="2024"), "native")


def test_client_values_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("THEMIS_CLIENT", raising=False)
    assert check_client(None) == "auto"
    assert check_client(" Native ") == "native"
    with pytest.raises(ConfigurationError, match="client must be one of auto, litellm, native"):
        check_client("httpx")
    monkeypatch.setenv("THEMIS_CLIENT", "litellm")
    assert check_client(None) == "litellm"
    monkeypatch.setenv("THEMIS_CLIENT", "bogus")
    with pytest.raises(ConfigurationError, match="THEMIS_CLIENT"):
        check_client(None)


def test_all_native_decides_whether_litellm_workers_are_worth_starting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("THEMIS_CLIENT", raising=False)
    base = "http://127.0.0.1:9/v1"
    assert all_native(["openai/a", "openai/b"], base, None)
    assert not all_native(["openai/a", "anthropic/b"], base, None)
    assert not all_native(["openai/a"], None, None)
    assert not all_native(["openai/a"], base, "litellm")
    assert not all_native(["anthropic/b"], base, "native")  # the error comes when it runs


def test_text_completion_models_use_the_completions_endpoint(openai_server: OpenAIServer) -> None:
    task = make_task(
        "Sum.\nEXPECTED: 9",
        model="text-completion-openai/m",
        sampling=SamplingConfig(max_tokens=16),
        api_base=openai_server.url,
        api_key="sk-local-text",  # litellm's text-completion route insists on a key
    )
    native = _call("openai_native", task)
    reference = _call("litellm", task)
    assert isinstance(native, ProviderResponse) and isinstance(reference, ProviderResponse)
    assert native.text == reference.text == "#### 9"
    assert native.usage == reference.usage
    assert native.finish_reason == reference.finish_reason == "stop"
    openai_server.set_plan(FaultPlan(status_for_model={"m": 404}))
    assert isinstance(_call("openai_native", task), ModelNotFoundError)


PRICE_CHILD = """
import asyncio, json, sys
sys.path.insert(0, sys.argv[2])
from support.tasks import make_task
from pytest_themis.providers import create_provider
provider = create_provider("openai_native")
task = make_task("Add.\\nEXPECTED: 17", model="openai/gpt-4o-mini", api_base=sys.argv[1])
response = provider.generate(task)
provider.close()
print(json.dumps({"cost": response.cost, "litellm": "litellm" in sys.modules}))
"""


def test_priced_models_cost_the_same_without_importing_litellm(
    openai_server: OpenAIServer,
) -> None:
    import json
    import subprocess
    from pathlib import Path

    tests_dir = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run(
        [sys.executable, "-c", PRICE_CHILD, openai_server.url, tests_dir],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    child = json.loads(done.stdout.strip().splitlines()[-1])
    assert child["litellm"] is False
    task = make_task("Add.\nEXPECTED: 17", model="openai/gpt-4o-mini", api_base=openai_server.url)
    reference = _call("litellm", task)
    assert isinstance(reference, ProviderResponse) and reference.cost
    assert child["cost"] == pytest.approx(reference.cost)


@pytest.mark.parametrize(
    ("model", "client", "message"),
    [
        ("anthropic/claude-x", "native", "client='native' cannot send requests for"),
        ("openai/m", "httpx", "client must be one of auto, litellm, native"),
    ],
)
def test_evaluate_rejects_a_client_mistake_before_any_request(
    openai_server: OpenAIServer, model: str, client: str, message: str
) -> None:
    from pytest_themis import evaluate

    with pytest.raises(ConfigurationError, match=message):
        evaluate(
            dataset=[{"id": "r1", "q": "2+2", "a": "4"}],
            model=model,
            api_base=openai_server.url,
            prompt="{q}",
            reference_field="a",
            metrics=["exact_match"],
            storage=None,
            client=client,
        )
    assert openai_server.stats.request_count == 0


def test_proxy_from_the_environment_unless_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_themis.providers.openai_native import _env_proxy

    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert _env_proxy("http://10.1.2.3:8000/v1") is None
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    assert _env_proxy("http://10.1.2.3:8000/v1") == "http://proxy.example:3128"
    assert _env_proxy("https://api.openai.com/v1") is None  # no https proxy named
    monkeypatch.setenv("no_proxy", "10.1.2.3,localhost")
    assert _env_proxy("http://10.1.2.3:8000/v1") is None


def test_native_runs_stay_in_one_process_and_litellm_runs_may_spread() -> None:
    from pytest_themis.generation.pool import default_processes
    from pytest_themis.generation.router import ProviderRouter
    from pytest_themis.generation.runner import AUTO_PROCESS_MIN_TASKS, GenerationRunner

    base = "http://127.0.0.1:9/v1"
    tasks = [
        make_task(f"q{i}", model="openai/m", api_base=base, row_id=f"r{i}")
        for i in range(AUTO_PROCESS_MIN_TASKS)
    ]
    chosen = {}
    for client in ("auto", "native", "litellm"):
        runner = GenerationRunner(ProviderRouter(client=client), max_parallel=64)
        processes, rest = runner._choose_processes(tasks)
        assert list(rest) == tasks  # nothing lost by peeking
        chosen[client] = processes
    assert chosen["auto"] == chosen["native"] == 1
    assert chosen["litellm"] == default_processes()


def test_no_key_for_api_openai_com_fails_before_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    error = _call("openai_native", make_task("hi", model="openai/gpt-4o-mini"))
    assert isinstance(error, AuthenticationError) and not error.transient
    assert "no API key was found (nothing was sent)" in str(error)
    assert "set OPENAI_API_KEY (or pass api_key)" in str(error)


def test_an_unlisted_model_is_unpriced_without_parsing_the_price_table() -> None:
    from pytest_themis.providers import pricing

    pricing._listed_price.cache_clear()
    pricing._price_table.cache_clear()
    assert pricing._listed_price("local-model-not-in-any-table") is None
    assert pricing._price_table.cache_info().currsize == 0  # decided on the text alone
    listed = pricing._listed_price("gpt-4o-mini")
    assert listed is not None and all(price > 0 for price in listed)
    assert pricing._price_table.cache_info().currsize == 1
