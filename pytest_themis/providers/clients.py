"""Which HTTP client serves a litellm-named model: litellm itself, or the native OpenAI client.

The choice is transport only. A model keeps ``provider="litellm"`` in its :class:`ModelSpec`
(and so in its cache key) whichever client sends the request, so a cache filled through one
client is reused through the other. Nothing here imports a client library.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from ..core.entities import ModelSpec
from ..errors import ConfigurationError

__all__ = [
    "CLIENTS",
    "NATIVE_PREFIXES",
    "NATIVE_TRANSPORT_OPTIONS",
    "all_native",
    "check_client",
    "client_for",
    "native_blocker",
    "native_options",
]

#: Accepted values of ``client=`` / ``--themis-client`` / ini ``themis_client``.
CLIENTS = ("auto", "litellm", "native")

#: Model prefixes the native client speaks: chat completions, and litellm's name for the
#: OpenAI text-completions endpoint.
NATIVE_PREFIXES = ("openai/", "text-completion-openai/")

#: Provider options the native client consumes itself (never sent in the request body).
NATIVE_TRANSPORT_OPTIONS = frozenset(
    {
        "api_base", "base_url", "api_key", "extra_headers", "headers", "extra_body",
        "organization", "timeout", "num_retries", "max_retries", "custom_llm_provider",
        "input_cost_per_token", "output_cost_per_token",
    }
)  # fmt: skip

#: Provider options the native client understands (everything else needs litellm): its own,
#: and the OpenAI request-body parameters, sent as they are.
native_options = NATIVE_TRANSPORT_OPTIONS | frozenset(
    {
        "frequency_penalty", "presence_penalty", "logit_bias", "response_format",
        "reasoning_effort", "user", "service_tier",
    }
)  # fmt: skip


def check_client(value: Any, where: str = "client") -> str:
    """``value`` as one of :data:`CLIENTS`, else ConfigurationError. None means the
    ``THEMIS_CLIENT`` environment variable when set, else ``auto``."""
    if value is None:
        value = os.environ.get("THEMIS_CLIENT") or "auto"
        where = "THEMIS_CLIENT"
    text = str(value).strip().lower()
    if text not in CLIENTS:
        raise ConfigurationError(f"{where} must be one of {', '.join(CLIENTS)}, got {value!r}")
    return text


def native_blocker(identifier: str, options: Mapping[str, Any]) -> str | None:
    """Why the native client cannot serve this litellm model, or None when it can."""
    if not identifier.startswith(NATIVE_PREFIXES):
        return (
            f"model {identifier!r} is not an OpenAI-compatible model (the native client serves "
            "'openai/<model>' and 'text-completion-openai/<model>')"
        )
    custom = options.get("custom_llm_provider")
    if custom and custom != "openai":
        return f"custom_llm_provider={custom!r} is not 'openai'"
    unknown = sorted(k for k in options if k not in native_options)
    if unknown:
        return f"provider option(s) {', '.join(map(repr, unknown))} need litellm"
    return None


def client_for(model: ModelSpec, client: str = "auto") -> str:
    """``"native"`` or ``"litellm"``: the client that sends ``model``'s requests.

    ``auto`` picks the native client for an OpenAI-compatible model with an ``api_base`` whose
    options it understands, litellm otherwise; ``litellm`` always picks litellm; ``native``
    picks the native client and raises :class:`ConfigurationError` for a model it cannot serve.
    Models of other providers (``fake``, ``python`` …) are not affected (``"litellm"`` is
    returned only for litellm models; others get their own provider name).
    """
    if model.provider != "litellm":
        return model.provider
    if client == "litellm":
        return "litellm"
    blocker = native_blocker(model.identifier, model.options)
    if client == "native":
        if blocker is not None:
            raise ConfigurationError(
                f"client='native' cannot send requests for {model.identifier!r}: {blocker}; "
                "use client='auto' (--themis-client=auto) to let litellm serve it"
            )
        return "native"
    if blocker is None and model.api_base:
        return "native"
    return "litellm"


def all_native(identifiers: Iterable[str], api_base: str | None, client: str | None) -> bool:
    """True when every one of these litellm model names would go through the native client."""
    chosen = check_client(client)
    options = {"api_base": api_base} if api_base else {}
    try:
        return all(
            client_for(ModelSpec(name, options=options), chosen) == "native" for name in identifiers
        )
    except ConfigurationError:
        return False  # reported when the model's cell runs
