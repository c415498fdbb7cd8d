"""What the litellm and native clients share: merged options, repr, error naming, Retry-After."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from support.responders import recording_responder
from support.tasks import make_task

from pytest_themis.core.entities import ProviderResponse
from pytest_themis.providers import create_provider
from pytest_themis.providers.clients import NATIVE_TRANSPORT_OPTIONS, native_options
from pytest_themis.providers.remote import RemoteProvider, describe_task, retry_after_seconds
from pytest_themis.testing import OpenAIServer

SECRET = "sk-remote-secret-9d31"


@pytest.mark.parametrize("name", ["litellm", "openai_native"])
def test_repr_names_the_class_and_hides_secrets(name: str) -> None:
    provider = create_provider(name, api_key=SECRET, api_base="http://example.invalid/v1")
    assert isinstance(provider, RemoteProvider)
    text = repr(provider)
    assert text.startswith(type(provider).__name__ + "(")
    assert SECRET not in text and "http://example.invalid/v1" in text


@pytest.mark.parametrize("name", ["litellm", "openai_native"])
def test_base_url_is_read_as_api_base_and_the_task_wins(name: str) -> None:
    provider = create_provider(name, base_url="http://provider/v1", timeout=3)
    assert isinstance(provider, RemoteProvider)
    merged = provider.merged_options({"timeout": 9})
    assert merged == {"api_base": "http://provider/v1", "timeout": 9}
    both = provider.merged_options({"api_base": "http://task/v1"})
    assert both["api_base"] == "http://task/v1" and "base_url" not in both


def test_only_the_native_client_drops_an_empty_api_base() -> None:
    native = create_provider("openai_native")
    litellm = create_provider("litellm")
    assert isinstance(native, RemoteProvider) and isinstance(litellm, RemoteProvider)
    assert "api_base" not in native.merged_options({"api_base": ""})
    assert litellm.merged_options({"api_base": ""}) == {"api_base": ""}


def test_describe_task_names_model_base_and_task() -> None:
    task = make_task("hi", model="openai/m")
    assert describe_task(task, {"api_base": "http://h/v1"}) == (
        f"model 'openai/m' at http://h/v1 (task {task.task_id})"
    )
    assert describe_task(task, {}) == f"model 'openai/m' (task {task.task_id})"


def test_retry_after_header_forms() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"retry-after-ms": "soon", "retry-after": "9"}) == 9.0
    assert retry_after_seconds({"retry-after": "-4"}) == 0.0
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({"retry-after": None, "retry-after-ms": None}) is None
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 < (retry_after_seconds({"retry-after": later}) or 0) <= 30


def test_transport_options_never_reach_the_request_body() -> None:
    assert NATIVE_TRANSPORT_OPTIONS < native_options
    seen, responder = recording_responder()

    with OpenAIServer(responder=responder) as server:
        task = make_task(
            "hello",
            model="openai/m",
            base_url=server.url,
            api_key=SECRET,
            extra_headers={"X-Trace": "1"},
            headers={"X-Other": "2"},
            extra_body={"top_k": 4},
            organization="org-1",
            timeout=5,
            num_retries=0,
            max_retries=0,
            custom_llm_provider="openai",
            input_cost_per_token=0.0,
            output_cost_per_token=0.0,
            user="u-1",
        )
        provider = create_provider("openai_native")
        try:
            assert isinstance(provider.generate(task, timeout=5), ProviderResponse)
        finally:
            provider.close()
    (request,) = seen
    assert not set(request) & NATIVE_TRANSPORT_OPTIONS
    assert request["user"] == "u-1" and request["top_k"] == 4
