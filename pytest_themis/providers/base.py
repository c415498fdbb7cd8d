"""The provider contract and the name → factory registry."""

from __future__ import annotations

import asyncio
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..core.entities import GenerationTask, ProviderResponse, is_secret_option
from ..errors import ConfigurationError
from ..hookspecs import hookimpl

__all__ = [
    "PLACEHOLDER_API_KEY",
    "Provider",
    "create_provider",
    "list_providers",
    "register_provider",
    "secret_values",
]


class Provider(ABC):
    """Turns a :class:`GenerationTask` into a :class:`ProviderResponse`.

    Implement :meth:`generate` (blocking) and, when the client has a native async API, override
    :meth:`agenerate` and set ``supports_async = True`` so the runner can keep hundreds of
    requests in flight on one thread. Failures must be raised as
    :class:`~pytest_themis.errors.ProviderError` subclasses: transient ones are retried,
    permanent ones are not.
    """

    name: str = "provider"
    supports_async: bool = False

    @abstractmethod
    def generate(self, task: GenerationTask, *, timeout: float | None = None) -> ProviderResponse:
        """Return the model's response to ``task.messages`` under ``task.sampling``."""

    async def agenerate(
        self, task: GenerationTask, *, timeout: float | None = None
    ) -> ProviderResponse:
        return await asyncio.to_thread(self.generate, task, timeout=timeout)

    def close(self) -> None:
        """Release clients and connections (called when a run ends)."""


ProviderFactory = Callable[..., Provider]
_REGISTRY: dict[str, ProviderFactory] = {}
_BUILTINS = {
    "fake": "pytest_themis.providers.fake:FakeProvider",
    "litellm": "pytest_themis.providers.litellm_provider:LiteLLMProvider",
    "openai_native": "pytest_themis.providers.openai_native:OpenAINativeProvider",
    "python": "pytest_themis.providers.python_provider:PythonProvider",
}


@hookimpl
def themis_register_providers() -> dict[str, str]:
    """The built-in providers, registered through the extension hook like any plugin's."""
    return dict(_BUILTINS)


def _plugin_providers() -> dict[str, Any]:
    # deferred: the extension registry imports this module to register the built-ins
    from ..extensions import registered

    return registered("providers")


def register_provider(name: str, factory: ProviderFactory, *, replace: bool = False) -> None:
    """Make ``create_provider(name)`` call ``factory(**options)``."""
    if not name or not name.isidentifier():
        raise ConfigurationError(f"provider name {name!r} must be a Python identifier")
    if name in _REGISTRY and not replace:
        raise ConfigurationError(
            f"provider {name!r} is already registered; pass replace=True to override it"
        )
    _REGISTRY[name] = factory


def list_providers() -> list[str]:
    """Names accepted by :func:`create_provider`, sorted."""
    return sorted(set(_REGISTRY) | set(_plugin_providers()))


def create_provider(name: str, **options: Any) -> Provider:
    """Instantiate the provider registered as ``name`` (``fake``, ``litellm``, ``python`` …)."""
    factory = _REGISTRY.get(name)
    if factory is None:
        target = _plugin_providers().get(name)
        if isinstance(target, str):
            module_name, _, attr = target.partition(":")
            import importlib

            target = getattr(importlib.import_module(module_name), attr)
        if target is not None:
            factory = _REGISTRY[name] = target
    if factory is None:
        raise ConfigurationError(
            f"unknown provider {name!r}; available: {', '.join(list_providers())}. "
            "Register your own with pytest_themis.providers.register_provider()."
        )
    return factory(**options)


#: Sent as the key to local servers that need none; never a secret.
PLACEHOLDER_API_KEY = "sk-themis-no-key"
_MIN_SECRET_LENGTH = 4


def secret_values(options: Mapping[str, Any], env: Iterable[str] = ()) -> list[str]:
    """Every credential-looking value in ``options`` (header values included, and the token of
    ``Bearer …``), plus the environment variables named in ``env``; longest first, for redaction.
    """
    found: set[str] = set()

    def collect(name: str, value: Any, inside_headers: bool) -> None:
        if isinstance(value, Mapping):
            headers = inside_headers or "header" in name.lower()
            for key, item in value.items():
                collect(str(key), item, headers)
        elif isinstance(value, str) and (inside_headers or is_secret_option(name)):
            if len(value) >= _MIN_SECRET_LENGTH and value != PLACEHOLDER_API_KEY:
                found.add(value)
                scheme, _, token = value.partition(" ")
                if token and scheme.lower() in ("bearer", "basic", "token"):
                    found.add(token)

    for name, value in options.items():
        collect(str(name), value, False)
    for name in env:
        value = os.environ.get(name)
        if value and len(value) >= _MIN_SECRET_LENGTH:
            found.add(value)
    return sorted(found, key=len, reverse=True)
