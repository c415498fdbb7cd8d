"""The ``python`` provider: a user callable as the model."""

from __future__ import annotations

import asyncio
import functools

import pytest

from pytest_themis.core.entities import (
    CellSpec,
    GenerationTask,
    ModelSpec,
    ProviderResponse,
    SamplingConfig,
    TokenUsage,
)
from pytest_themis.errors import (
    ConfigurationError,
    PermanentProviderError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
)
from pytest_themis.providers import create_provider
from pytest_themis.providers.python_provider import PythonProvider


def make_task(prompt: str = "What is the capital of France?") -> GenerationTask:
    spec = ModelSpec(identifier="my-app", provider="python")
    cell = CellSpec(model=spec, template_name="t", sampling=SamplingConfig())
    messages = (
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": prompt},
    )
    return GenerationTask(cell=cell, row_id="row-7", sample_index=0, messages=messages)


def shout(prompt: str) -> str:
    return prompt.upper()


def test_create_provider_with_a_prompt_function() -> None:
    provider = create_provider("python", fn=shout)
    assert isinstance(provider, PythonProvider)
    assert provider.supports_async is False
    response = provider.generate(make_task("hello"))
    assert response.text == "HELLO"
    assert response.finish_reason == "stop"


def test_prompt_and_task_positional() -> None:
    seen: list[GenerationTask] = []

    def app(prompt: str, task: GenerationTask) -> str:
        seen.append(task)
        return f"{task.row_id}:{prompt}"

    task = make_task("hi")
    assert PythonProvider(fn=app).generate(task).text == "row-7:hi"
    assert seen == [task]


def test_messages_keyword_gets_the_whole_chat() -> None:
    def app(*, messages: list[dict[str, str]]) -> str:
        return "|".join(m["role"] for m in messages)

    assert PythonProvider(fn=app).generate(make_task()).text == "system|user"


def test_optional_second_parameter_is_not_filled_with_the_task() -> None:
    def app(prompt: str, suffix: str = "!") -> str:
        return prompt + suffix

    assert PythonProvider(fn=app).generate(make_task("ok")).text == "ok!"


def test_callable_object_and_partial() -> None:
    class Bot:
        def __call__(self, prompt: str) -> str:
            return "bot:" + prompt

    def tagged(tag: str, prompt: str) -> str:
        return f"{tag}:{prompt}"

    assert PythonProvider(fn=Bot()).generate(make_task("x")).text == "bot:x"
    assert PythonProvider(fn=functools.partial(tagged, "p")).generate(make_task("y")).text == "p:y"


def test_async_function_supports_async_and_runs_both_ways() -> None:
    async def app(prompt: str) -> str:
        await asyncio.sleep(0)
        return prompt[::-1]

    provider = PythonProvider(fn=app)
    assert provider.supports_async is True
    assert asyncio.run(provider.agenerate(make_task("abc"))).text == "cba"
    assert provider.generate(make_task("abc")).text == "cba"


def test_sync_generate_of_async_function_inside_a_running_loop() -> None:
    async def app(prompt: str) -> str:
        return prompt + "?"

    provider = PythonProvider(fn=app)

    async def caller() -> str:
        return provider.generate(make_task("why")).text

    assert asyncio.run(caller()) == "why?"


def test_dict_result_with_usage_and_cost() -> None:
    def app(prompt: str) -> dict:
        return {"text": "42", "usage": {"prompt_tokens": 3, "completion_tokens": 1}, "cost": 0.5}

    response = PythonProvider(fn=app).generate(make_task())
    assert response.text == "42"
    assert response.usage == TokenUsage(prompt_tokens=3, completion_tokens=1)
    assert response.cost == 0.5


def test_provider_response_passes_through() -> None:
    expected = ProviderResponse(
        text="done", usage=TokenUsage(1, 2), cost=0.1, finish_reason="length"
    )
    assert PythonProvider(fn=lambda prompt: expected).generate(make_task()) is expected


def test_exception_becomes_a_permanent_error_naming_callable_and_type() -> None:
    def broken_app(prompt: str) -> str:
        raise KeyError("missing-key")

    with pytest.raises(PermanentProviderError) as info:
        PythonProvider(fn=broken_app).generate(make_task())
    message = str(info.value)
    assert "broken_app" in message and "KeyError" in message and "missing-key" in message
    assert info.value.transient is False
    assert isinstance(info.value.__cause__, KeyError)


def test_async_exception_is_wrapped_too() -> None:
    async def broken(prompt: str) -> str:
        raise ValueError("bad input")

    with pytest.raises(PermanentProviderError, match="broken.*ValueError: bad input"):
        asyncio.run(PythonProvider(fn=broken).agenerate(make_task()))


def test_transient_error_is_reraised_unchanged() -> None:
    original = RateLimitError("slow down", retry_after=2.0)

    def app(prompt: str) -> str:
        raise original

    with pytest.raises(RateLimitError) as info:
        PythonProvider(fn=app).generate(make_task())
    assert info.value is original


@pytest.mark.parametrize(
    ("result", "named"),
    [
        (42, "int"),
        (None, "NoneType"),
        ({"answer": "x"}, "'text'"),
        ({"text": "x", "cost": "a"}, "cost"),
    ],
)
def test_unsupported_return_value_names_callable_and_type(result: object, named: str) -> None:
    def odd_app(prompt: str) -> object:
        return result

    with pytest.raises(ProviderError, match="odd_app") as info:
        PythonProvider(fn=odd_app).generate(make_task())
    assert named in str(info.value)
    assert info.value.transient is False


def test_async_timeout_becomes_provider_timeout_error() -> None:
    async def slow(prompt: str) -> str:
        await asyncio.Event().wait()  # never set: only the timeout ends it
        return "never"

    with pytest.raises(ProviderTimeoutError, match="slow"):
        asyncio.run(PythonProvider(fn=slow).agenerate(make_task(), timeout=0.05))


@pytest.mark.parametrize("fn", [None, "not callable", 3])
def test_non_callable_is_a_configuration_error(fn: object) -> None:
    with pytest.raises(ConfigurationError, match="callable"):
        PythonProvider(fn=fn)  # type: ignore[arg-type]


def test_unusable_signatures_are_rejected_at_construction() -> None:
    def three(a: str, b: str, c: str) -> str:
        return a

    def nothing() -> str:
        return ""

    with pytest.raises(ConfigurationError, match="three"):
        PythonProvider(fn=three)
    with pytest.raises(ConfigurationError, match="nothing"):
        PythonProvider(fn=nothing)
