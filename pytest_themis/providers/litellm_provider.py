"""The ``litellm`` provider: any model litellm can reach, called with per-request settings only.

litellm is imported on first use. Its request settings are never touched globally: retries,
timeouts, keys, bases and headers all travel as keyword arguments of each call, so other code
using litellm in the same process is unaffected. The one global we set is output-only: litellm's
debug banners ("Provider List: …", "Give Feedback / Get Help") are switched off, because our
errors already say what failed and they would otherwise flood the user's terminal. Failures are
classified by exception *type* into :mod:`pytest_themis.errors`, and every message we raise has
credentials replaced by ``***``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

from ..core.entities import GenerationTask, ProviderResponse, TokenUsage, redact_secrets
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
from .litellm_names import WELL_KNOWN_PREFIXES, import_litellm, resolve_provider, validate_model
from .remote import RemoteProvider, describe_task, retry_after_seconds

__all__ = ["LiteLLMProvider", "import_litellm", "validate_model"]

#: Provider options read here, not passed on to litellm as they are.
_OUR_OPTIONS = frozenset({"timeout"})


class LiteLLMProvider(RemoteProvider):
    """Calls ``litellm.completion`` / ``litellm.acompletion`` for each task.

    ``options`` (from ``create_provider("litellm", **options)``) are merged with
    ``task.model.options`` — the task wins — and passed to litellm per call: ``api_base`` (or
    ``base_url``), ``api_key``, ``extra_headers``, ``api_version`` and any other litellm keyword.
    ``timeout`` is the default request timeout in seconds when the runner gives none. A model
    without a recognisable provider prefix but with an ``api_base`` is sent to that base as an
    OpenAI-compatible endpoint; with no key configured a placeholder key is sent.
    Retries are left to the runner: litellm and the OpenAI client are told not to retry.
    """

    name = "litellm"
    supports_async = True

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._routes: dict[tuple[str, str | None], str | None] = {}

    # -- public API ----------------------------------------------------------------------------

    def generate(self, task: GenerationTask, *, timeout: float | None = None) -> ProviderResponse:
        litellm = import_litellm()
        options = self.merged_options(task.model.options)
        kwargs = self._request(task, options, timeout)
        try:
            response = litellm.completion(**kwargs)
        except Exception as exc:  # noqa: BLE001 - classified below
            error = self._translate(exc, task, options)
        else:
            return self._parse(litellm, response, task, options)
        # Raised outside ``except``: the provider's exception (which may echo the key) is not
        # chained to ours, so tracebacks cannot show it.
        raise error

    async def agenerate(
        self, task: GenerationTask, *, timeout: float | None = None
    ) -> ProviderResponse:
        litellm = import_litellm()
        options = self.merged_options(task.model.options)
        kwargs = self._request(task, options, timeout)
        try:
            response = await litellm.acompletion(**kwargs)
        except Exception as exc:  # noqa: BLE001 - classified below
            error = self._translate(exc, task, options)
        else:
            return self._parse(litellm, response, task, options)
        raise error

    def validate_model(self, identifier: str, options: Mapping[str, Any] | None = None) -> None:
        """Like :func:`validate_model`, with this provider's options merged under ``options``."""
        validate_model(identifier, self.merged_options(options or {}))

    def close(self) -> None:
        """Nothing to release: litellm owns its (shared) HTTP clients."""

    # -- request -------------------------------------------------------------------------------

    def _provider_of(self, identifier: str, api_base: str | None) -> str | None:
        key = (identifier, api_base)
        if key not in self._routes:
            self._routes[key] = resolve_provider(identifier, api_base)
        return self._routes[key]

    def _request(
        self, task: GenerationTask, options: dict[str, Any], timeout: float | None
    ) -> dict[str, Any]:
        identifier = task.model.identifier
        kwargs: dict[str, Any] = {k: v for k, v in options.items() if k not in _OUR_OPTIONS}
        kwargs["model"] = identifier
        kwargs["messages"] = [dict(m) for m in task.messages]
        kwargs.update(task.sampling.request_params())
        chosen_timeout = timeout if timeout is not None else options.get("timeout")
        if chosen_timeout is not None:
            kwargs["timeout"] = chosen_timeout
        kwargs["num_retries"] = 0
        kwargs["max_retries"] = 0
        api_base = _api_base(options)
        if api_base and not kwargs.get("custom_llm_provider"):
            provider = self._provider_of(identifier, api_base)
            if provider is None:
                kwargs["custom_llm_provider"] = provider = "openai"
            if (
                provider == "openai"
                and not kwargs.get("api_key")
                and "OPENAI_API_KEY" not in os.environ
            ):
                kwargs["api_key"] = PLACEHOLDER_API_KEY
        return kwargs

    # -- response ------------------------------------------------------------------------------

    def _parse(
        self, litellm: ModuleType, response: Any, task: GenerationTask, options: Mapping[str, Any]
    ) -> ProviderResponse:
        where = describe_task(task, options)
        choices = getattr(response, "choices", None)
        if not choices:
            raise MalformedResponseError(
                f"{where} answered with no choices; the server returned an empty completion "
                "(retrying may help; check the server if it persists)",
                model=task.model.identifier,
            )
        choice = choices[0]
        finish_reason = getattr(choice, "finish_reason", None)
        message = getattr(choice, "message", None)
        text = getattr(message, "content", None)
        if text is None:
            if finish_reason in (None, "stop"):
                raise MalformedResponseError(
                    f"{where} answered without message content (finish_reason "
                    f"{finish_reason!r}); the response is not a chat completion",
                    model=task.model.identifier,
                )
            text = ""
        elif not isinstance(text, str):
            raise MalformedResponseError(
                f"{where} answered with {type(text).__name__} content instead of text",
                model=task.model.identifier,
            )
        usage = None
        raw_usage = getattr(response, "usage", None)
        if raw_usage is not None:
            usage = TokenUsage(
                prompt_tokens=int(getattr(raw_usage, "prompt_tokens", 0) or 0),
                completion_tokens=int(getattr(raw_usage, "completion_tokens", 0) or 0),
            )
        return ProviderResponse(
            text=text, usage=usage, cost=_cost(litellm, response), finish_reason=finish_reason
        )

    # -- errors --------------------------------------------------------------------------------

    def _translate(
        self, exc: BaseException, task: GenerationTask, options: Mapping[str, Any]
    ) -> ProviderError:
        """Map a litellm/OpenAI/httpx exception to ours by type, with secrets redacted."""
        error = _classify(import_litellm(), exc, task, options)
        secrets = _secrets(options)
        if secrets:
            error.args = (redact_secrets(str(error.args[0]), secrets),)
        return error


def _api_base(options: Mapping[str, Any]) -> str | None:
    value = options.get("api_base")
    return str(value) if value else None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _has_type(exc: BaseException, types: tuple[type[BaseException], ...]) -> bool:
    return any(isinstance(e, types) for e in _chain(exc))


def _status_code(exc: BaseException) -> int | None:
    for name in ("status_code", "provider_status_code"):
        value = getattr(exc, name, None)
        if isinstance(value, int) and 100 <= value <= 599:
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def _classify(
    litellm: ModuleType, exc: BaseException, task: GenerationTask, options: Mapping[str, Any]
) -> ProviderError:
    import openai

    model = task.model.identifier
    where = describe_task(task, options)
    base = _api_base(options)
    detail = _detail(exc)
    status = _status_code(exc)

    timeout_types: tuple[type[BaseException], ...] = (litellm.Timeout, openai.APITimeoutError)
    if _has_type(exc, timeout_types):
        return ProviderTimeoutError(
            f"{where} did not answer within the client timeout ({detail}); raise the timeout "
            "or lower the parallelism if the server is overloaded",
            status_code=408,
            model=model,
        )
    if isinstance(exc, (litellm.RateLimitError, openai.RateLimitError)) or status == 429:
        retry_after = _retry_after(exc)
        wait = f" and asked to wait {retry_after:g}s" if retry_after is not None else ""
        return RateLimitError(
            f"{where} is rate limited (HTTP 429){wait}: {detail}; lower max_parallel or "
            "raise the provider's rate limit",
            status_code=429,
            retry_after=retry_after,
            model=model,
        )
    auth_types = (
        litellm.AuthenticationError,
        litellm.PermissionDeniedError,
        openai.AuthenticationError,
        openai.PermissionDeniedError,
    )
    if isinstance(exc, auth_types) or status in (401, 403) or _missing_credentials(exc):
        variables = _key_variables(litellm, model, options)
        where_key = (
            f"set {' or '.join(variables)} (or pass api_key)"
            if variables
            else "check the api_key option or the provider's API key environment variable"
        )
        missing = _missing_credentials(exc) and not options.get("api_key")
        what = (
            "no API key was found (nothing was sent)"
            if missing
            else f"the credentials were rejected (HTTP {status or 401})"
        )
        return AuthenticationError(
            f"{where}: {what}: {detail}; {where_key}",
            status_code=None if missing else status or 401,
            model=model,
        )
    if isinstance(exc, (litellm.NotFoundError, openai.NotFoundError)) or status == 404:
        return ModelNotFoundError(
            f"{where} was not found (HTTP 404): {detail}; check the model name and api_base",
            status_code=404,
            model=model,
        )
    unknown_provider = getattr(litellm, "LiteLLMUnknownProvider", None)
    if unknown_provider is not None and isinstance(exc, unknown_provider):
        return BadRequestError(
            f"litellm cannot tell which provider serves model {model!r}; write it with a "
            f"provider prefix such as 'openai/{model}' or 'anthropic/{model}'",
            status_code=400,
            model=model,
        )
    request_types = (
        litellm.BadRequestError,
        litellm.UnprocessableEntityError,
        litellm.ContextWindowExceededError,
        openai.BadRequestError,
        openai.UnprocessableEntityError,
    )
    if isinstance(exc, request_types) or status in (400, 413, 422):
        return BadRequestError(
            f"{where} rejected the request (HTTP {status or 400}): {detail}; check the "
            "prompt length, sampling parameters and provider options",
            status_code=status or 400,
            model=model,
        )
    if _has_type(exc, (openai.APIConnectionError, ConnectionError, litellm.APIConnectionError)):
        target = base or "the provider's endpoint"
        return ProviderConnectionError(
            f"could not connect to {target} for model {model!r} (task {task.task_id}): "
            f"{_root_message(exc)}; check that the server is running and api_base is correct",
            model=model,
        )
    malformed_types = (json.JSONDecodeError, openai.APIResponseValidationError)
    if _has_type(exc, malformed_types):
        return MalformedResponseError(
            f"{where} answered with a body that is not a valid completion: {detail}",
            status_code=status,
            model=model,
        )
    server_types = (
        litellm.InternalServerError,
        litellm.ServiceUnavailableError,
        litellm.BadGatewayError,
        openai.InternalServerError,
    )
    if isinstance(exc, server_types) or (status is not None and status >= 500):
        return ServerError(
            f"{where} failed with a server error (HTTP {status or 500}): {detail}",
            status_code=status or 500,
            retry_after=_retry_after(exc),
            model=model,
        )
    return ProviderError(
        f"{where} failed: {type(exc).__name__}: {detail}", status_code=status, model=model
    )


_MISSING_KEY_PHRASES = (
    "missing credentials",
    "api_key client option must be set",
    "missing api key",
    "api key not found",
    "no api key",
    "api_key must be",
)


def _missing_credentials(exc: BaseException) -> bool:
    """Whether the client refused to send because no key was configured (litellm reports this
    as a 500 or a generic error, although nothing reached the server)."""
    return any(phrase in str(e).lower() for e in _chain(exc) for phrase in _MISSING_KEY_PHRASES)


def _key_variables(litellm: ModuleType, model: str, options: Mapping[str, Any]) -> list[str]:
    """The environment variable(s) litellm reads the key of ``model`` from (no network)."""
    if options.get("api_base") and not options.get("custom_llm_provider"):
        prefix = model.split("/", 1)[0]
        if prefix not in getattr(litellm, "provider_list", ()):
            return []
    try:
        found = litellm.validate_environment(model=model)
    except Exception:  # noqa: BLE001 - best effort: the message still names the api_key option
        return []
    missing = found.get("missing_keys") if isinstance(found, Mapping) else None
    names = [str(k) for k in missing or [] if str(k).isupper()]
    prefix = model.split("/", 1)[0]
    if not names and prefix in WELL_KNOWN_PREFIXES:
        names = [prefix.upper() + "_API_KEY"]  # a rejected key: name where it came from
    return names


def _detail(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    return " ".join(text.split())[:500] or type(exc).__name__


def _root_message(exc: BaseException) -> str:
    *_, root = _chain(exc)
    text = str(root).strip() or type(root).__name__
    return " ".join(text.split())[:300]


def _headers_of(exc: BaseException) -> Iterator[Mapping[str, Any]]:
    for holder in (exc, getattr(exc, "response", None)):
        for name in ("litellm_response_headers", "headers"):
            headers = getattr(holder, name, None)
            if headers is not None and hasattr(headers, "get"):
                yield headers


def _retry_after(exc: BaseException) -> float | None:
    """The wait the server asked for in the first response headers the exception carries."""
    for headers in _headers_of(exc):
        seconds = retry_after_seconds(headers)
        if seconds is not None:
            return seconds
    return None


def _secrets(options: Mapping[str, Any]) -> list[str]:
    return secret_values(options, env=[n for n in os.environ if n.endswith("_API_KEY")])


def _cost(litellm: ModuleType, response: Any) -> float | None:
    """The call's cost in USD when litellm knows the model's price, else None.

    litellm prices each response while it logs the call (``_hidden_params["response_cost"]``);
    that figure is used when present, otherwise ``litellm.completion_cost`` is asked.
    """
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, Mapping) and "response_cost" in hidden:
        value = hidden["response_cost"]
    else:
        try:
            value = litellm.completion_cost(completion_response=response)
        except Exception:  # noqa: BLE001 - unknown models raise; cost is optional
            return None
    if value is None or isinstance(value, bool):
        return None
    try:
        cost = float(value)
    except (TypeError, ValueError):
        return None
    return cost if cost == cost and cost >= 0 else None
