"""A lean client for OpenAI-compatible endpoints (vLLM, SGLang, TGI, llama.cpp, Ollama, OpenAI).

It speaks ``POST {api_base}/chat/completions`` (and ``/completions`` for
``text-completion-openai/<model>``) over aiohttp, with one keep-alive connection pool per endpoint
and event loop, and no SDK. Responses become :class:`ProviderResponse` objects and failures the
same :mod:`pytest_themis.errors` classes the litellm path raises, so the runner's retry policy
treats both alike. It serves models written ``openai/<model>`` (see :mod:`.clients` for when it is
chosen); the model keeps the ``litellm`` provider name in its cache key.

aiohttp is imported on the first request; litellm never is. Each call is priced by
:func:`.pricing.native_cost`, so budgets work for priced models without litellm.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from ..core.entities import GenerationTask, ProviderResponse, TokenUsage, redact_secrets
from ..core.setup_clock import setup_phase
from ..errors import (
    AuthenticationError,
    BadRequestError,
    MalformedResponseError,
    ModelNotFoundError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from .base import PLACEHOLDER_API_KEY, secret_values
from .clients import NATIVE_TRANSPORT_OPTIONS
from .pricing import native_cost
from .remote import RemoteProvider, describe_task, retry_after_seconds

__all__ = ["OPENAI_API_BASE", "OpenAINativeProvider"]

#: Where ``openai/<model>`` goes without an ``api_base``.
OPENAI_API_BASE = "https://api.openai.com/v1"
#: litellm's model prefix for the OpenAI text-completions endpoint.
_TEXT_PREFIX = "text-completion-openai/"
_KEY_HINT = "set OPENAI_API_KEY (or pass api_key)"
#: litellm's bundled price table, read (not imported) to price calls when litellm is not loaded.


class OpenAINativeProvider(RemoteProvider):
    """Chat (or text) completions against an OpenAI-compatible endpoint, on aiohttp.

    ``options`` are merged under each task's ``ModelSpec.options``: ``api_base`` (or
    ``base_url``; default api.openai.com), ``api_key`` (default ``$OPENAI_API_KEY``; a
    placeholder for a custom ``api_base``), ``extra_headers``, ``extra_body`` (merged into the
    request body), ``organization``, ``timeout`` (seconds, when the runner gives none), the OpenAI
    body parameters listed in :data:`.clients.native_options`, and ``input_cost_per_token`` /
    ``output_cost_per_token`` to price the calls.
    """

    name = "openai_native"
    supports_async = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._sessions: dict[tuple[int, str], tuple[asyncio.AbstractEventLoop, Any]] = {}
        self._proxies: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    # -- public API ----------------------------------------------------------------------------

    def generate(self, task: GenerationTask, *, timeout: float | None = None) -> ProviderResponse:
        """Blocking call: runs :meth:`agenerate` on this thread's own event loop."""
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is None or loop.is_closed():
            loop = asyncio.new_event_loop()
            self._local.loop = loop
        return loop.run_until_complete(self.agenerate(task, timeout=timeout))

    async def agenerate(
        self, task: GenerationTask, *, timeout: float | None = None
    ) -> ProviderResponse:
        options = self.merged_options(task.model.options)
        text_mode = task.model.identifier.startswith(_TEXT_PREFIX)
        base = str(options.get("api_base") or OPENAI_API_BASE).rstrip("/")
        url = base + ("/completions" if text_mode else "/chat/completions")
        body = json.dumps(_body(task, options, text_mode)).encode()
        headers = _headers(options, custom_base="api_base" in options)
        if not any(name.lower() == "authorization" for name in headers):
            raise AuthenticationError(
                f"{describe_task(task, options)}: no API key was found (nothing was sent); "
                f"{_KEY_HINT}",
                model=task.model.identifier,
            )
        chosen = timeout if timeout is not None else options.get("timeout")
        session = self._session(base)
        aiohttp = _aiohttp()

        error: ProviderError
        try:
            async with session.post(
                url,
                data=body,
                headers=headers,
                proxy=self._proxies.get(base),
                timeout=aiohttp.ClientTimeout(total=chosen) if chosen else None,
            ) as response:
                status = response.status
                raw = await response.read()
                if status >= 400:
                    error = _http_error(status, raw, response.headers, task, options)
                else:
                    return _parse(raw, task, options, text_mode)
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            limit = f"{chosen:g}s" if chosen else "aiohttp's default"
            error = ProviderTimeoutError(
                f"{describe_task(task, options)} did not answer within the client timeout "
                f"({limit}, {type(exc).__name__}); raise the timeout or lower the "
                "parallelism if the server is overloaded",
                status_code=408,
                model=task.model.identifier,
            )
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as exc:
            error = ProviderConnectionError(
                f"could not connect to {base} for model {task.model.identifier!r} "
                f"(task {task.task_id}): {type(exc).__name__}: {_oneline(str(exc), 300)}; check "
                "that the server is running and api_base is correct",
                model=task.model.identifier,
            )
        except aiohttp.ClientError as exc:
            error = ProviderError(
                f"{describe_task(task, options)} failed: {type(exc).__name__}: "
                f"{_oneline(str(exc), 500)}",
                model=task.model.identifier,
            )
        except ProviderError as exc:  # raised by _parse
            error = exc
        secrets = _secrets(options)
        if secrets:
            error.args = (redact_secrets(str(error.args[0]), secrets),)
        # Raised outside ``except``: nothing that may echo a key is chained to it.
        raise error

    def close(self) -> None:
        """Close every connection pool (on the loop that owns it)."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for loop, session in sessions:
            if session.closed:
                continue
            if loop.is_closed():
                _drop(session)
                continue
            try:
                if loop.is_running():
                    if _running_loop() is loop:
                        loop.create_task(session.close())
                    else:
                        asyncio.run_coroutine_threadsafe(session.close(), loop).result(10)
                else:
                    loop.run_until_complete(session.close())
            except Exception:  # noqa: BLE001 - closing is best effort; the pool is dropped anyway
                pass
        own: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if own is not None and not own.is_running() and not own.is_closed():
            own.close()

    async def aclose(self) -> None:
        """Close the connection pools of the running event loop (then :meth:`close` the rest)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            mine = [key for key, (owner, _) in self._sessions.items() if owner is loop]
            sessions = [self._sessions.pop(key)[1] for key in mine]
        for session in sessions:
            await session.close()
        self.close()

    # -- internals -----------------------------------------------------------------------------

    def merged_options(self, task_options: Mapping[str, Any]) -> dict[str, Any]:
        """As for every remote provider, with an empty ``api_base`` dropped (api.openai.com)."""
        options = super().merged_options(task_options)
        if not options.get("api_base"):
            options.pop("api_base", None)
        return options

    def _session(self, base: str) -> Any:
        """The keep-alive ``ClientSession`` of ``base`` on the running loop (created once)."""
        loop = asyncio.get_running_loop()
        key = (id(loop), base)
        entry = self._sessions.get(key)
        if entry is not None and entry[0] is loop and not entry[1].closed:
            return entry[1]
        aiohttp = _aiohttp()

        # No pool limit: the runner bounds the requests in flight (aiohttp's default is 100).
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
        # Not trust_env: aiohttp would then look up netrc and proxies on a thread for every
        # request; the proxy (HTTP(S)_PROXY / NO_PROXY, as httpx honours them) is found once.
        session = aiohttp.ClientSession(connector=connector, json_serialize=json.dumps)
        with self._lock:
            self._sessions[key] = (loop, session)
            self._proxies[base] = _env_proxy(base)
        return session


def _aiohttp() -> ModuleType:
    """aiohttp, its first import counted as provider set-up (not part of a run's time)."""
    if "aiohttp" not in sys.modules:
        with setup_phase():
            import aiohttp  # noqa: F401
    return sys.modules["aiohttp"]


def _env_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTP(S)_PROXY`` unless ``NO_PROXY``)."""
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies_environment().get(parts.scheme)


def _drop(session: Any) -> None:
    """Release a pool whose event loop is already closed (no coroutine can run any more)."""
    connector = session.connector
    session.detach()
    if connector is not None:
        try:
            connector._close()  # the synchronous part of aiohttp's close(): drop the sockets
        except Exception:  # noqa: BLE001 - transports of a closed loop may refuse; dropped anyway
            pass


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _model_name(identifier: str) -> str:
    return identifier.split("/", 1)[1] if "/" in identifier else identifier


def _body(task: GenerationTask, options: Mapping[str, Any], text_mode: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": _model_name(task.model.identifier)}
    if text_mode:
        body["prompt"] = task.prompt_text
    else:
        body["messages"] = [dict(m) for m in task.messages]
    body.update(task.sampling.request_params())
    for name, value in options.items():
        if name not in NATIVE_TRANSPORT_OPTIONS:
            body[name] = value
    extra = options.get("extra_body")
    if isinstance(extra, Mapping):
        body.update(extra)
    return body


def _headers(options: Mapping[str, Any], *, custom_base: bool) -> dict[str, str]:
    key = options.get("api_key") or os.environ.get("OPENAI_API_KEY")
    if not key and custom_base:
        key = PLACEHOLDER_API_KEY
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if options.get("organization"):
        headers["OpenAI-Organization"] = str(options["organization"])
    for name in ("headers", "extra_headers"):
        extra = options.get(name)
        if isinstance(extra, Mapping):
            headers.update({str(k): str(v) for k, v in extra.items()})
    return headers


def _oneline(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit]


def _error_detail(raw: bytes) -> str:
    """The ``error.message`` of an OpenAI error body, else the body's first characters."""
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        error = data.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            return _oneline(str(error["message"]), 500)
        if isinstance(error, str):
            return _oneline(error, 500)
    text = raw.decode("utf-8", "replace")
    return _oneline(text, 500) or "(empty body)"


def _http_error(
    status: int,
    raw: bytes,
    headers: Mapping[str, str],
    task: GenerationTask,
    options: Mapping[str, Any],
) -> ProviderError:
    """The error class of an HTTP error status, classified as the litellm path does."""
    where = describe_task(task, options)
    model = task.model.identifier
    detail = _error_detail(raw)
    if status == 429:
        retry_after = retry_after_seconds(headers)
        wait = f" and asked to wait {retry_after:g}s" if retry_after is not None else ""
        return RateLimitError(
            f"{where} is rate limited (HTTP 429){wait}: {detail}; lower max_parallel or "
            "raise the provider's rate limit",
            status_code=429,
            retry_after=retry_after,
            model=model,
        )
    if status == 408:
        return ProviderTimeoutError(
            f"{where} timed out on the server side (HTTP 408): {detail}; raise the timeout or "
            "lower the parallelism if the server is overloaded",
            status_code=408,
            model=model,
        )
    if status in (401, 403):
        return AuthenticationError(
            f"{where}: the credentials were rejected (HTTP {status}): {detail}; {_KEY_HINT}",
            status_code=status,
            model=model,
        )
    if status == 404:
        return ModelNotFoundError(
            f"{where} was not found (HTTP 404): {detail}; check the model name and api_base",
            status_code=404,
            model=model,
        )
    if status in (400, 413, 422):
        return BadRequestError(
            f"{where} rejected the request (HTTP {status}): {detail}; check the "
            "prompt length, sampling parameters and provider options",
            status_code=status,
            model=model,
        )
    if status >= 500:
        return ServerError(
            f"{where} failed with a server error (HTTP {status}): {detail}",
            status_code=status,
            retry_after=retry_after_seconds(headers),
            model=model,
        )
    return ProviderError(
        f"{where} failed (HTTP {status}): {detail}", status_code=status, model=model
    )


def _malformed(task: GenerationTask, options: Mapping[str, Any], why: str) -> Any:
    """The HTTP exchange succeeded, so no status code: the body is at fault."""
    where = describe_task(task, options)
    return MalformedResponseError(f"{where} {why}", model=task.model.identifier)


def _parse(
    raw: bytes, task: GenerationTask, options: Mapping[str, Any], text_mode: bool
) -> ProviderResponse:
    try:
        data = json.loads(raw)
    except ValueError:
        raise _malformed(
            task,
            options,
            "answered with a body that is not a valid completion: "
            f"{_oneline(raw.decode('utf-8', 'replace'), 200)!r} is not JSON",
        ) from None
    if not isinstance(data, Mapping):
        raise _malformed(task, options, "answered with JSON that is not an object")
    choices = data.get("choices")
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], Mapping):
        raise _malformed(
            task,
            options,
            "answered with no choices; the server returned an empty completion "
            "(retrying may help; check the server if it persists)",
        )
    choice = choices[0]
    finish_reason = choice.get("finish_reason")
    if text_mode:
        text = choice.get("text")
    else:
        message = choice.get("message")
        text = message.get("content") if isinstance(message, Mapping) else None
    if text is None:
        if finish_reason in (None, "stop"):
            raise _malformed(
                task,
                options,
                f"answered without message content (finish_reason {finish_reason!r}); the "
                "response is not a chat completion",
            )
        text = ""
    elif not isinstance(text, str):
        raise _malformed(
            task, options, f"answered with {type(text).__name__} content instead of text"
        )
    usage = None
    raw_usage = data.get("usage")
    if isinstance(raw_usage, Mapping):
        usage = TokenUsage(
            prompt_tokens=int(raw_usage.get("prompt_tokens") or 0),
            completion_tokens=int(raw_usage.get("completion_tokens") or 0),
        )
    return ProviderResponse(
        text=text,
        usage=usage,
        cost=native_cost(task.model.identifier, usage, options),
        finish_reason=finish_reason,
    )


def _secrets(options: Mapping[str, Any]) -> list[str]:
    return secret_values(options, env=("OPENAI_API_KEY",))
