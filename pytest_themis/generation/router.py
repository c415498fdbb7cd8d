"""Route each task to the provider that serves its model."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from ..core.entities import GenerationTask, ModelSpec, ProviderResponse
from ..errors import ConfigurationError
from ..providers.base import Provider, create_provider
from ..providers.clients import check_client, client_for
from .executors import TaskExecutor
from .failfast import FailFastExecutor

__all__ = ["ProviderRouter", "default_executor"]

RouteKey = tuple[str, str]


class ProviderRouter(TaskExecutor):
    """Maps ``(provider, model identifier)`` to a :class:`Provider` instance.

    With no explicit ``routes`` (or ``auto_create=True``) a provider is created on first use from
    the task's ``ModelSpec.provider``; callables given as python models are wired automatically.
    A route may also be keyed by provider name alone, serving all of its models.

    ``client`` picks the HTTP client of created ``litellm`` models (see
    :func:`~pytest_themis.providers.clients.client_for`): ``"auto"`` sends OpenAI-compatible
    models with an ``api_base`` through the native client, ``"litellm"`` and ``"native"`` force
    one. The choice is transport only: the model's provider (and cache key) stays ``litellm``.
    """

    def __init__(
        self,
        routes: Mapping[RouteKey | str, Provider] | None = None,
        *,
        auto_create: bool | None = None,
        client: str | None = None,
    ) -> None:
        self.client = check_client(client)
        self._routes: dict[RouteKey | str, Provider] = dict(routes or {})
        #: True for a router that only creates built-in providers on demand (no custom routes).
        self.is_default = not self._routes
        self.auto_create = (not self._routes) if auto_create is None else auto_create
        self._lock = threading.Lock()
        self._created: dict[Any, Provider] = {}

    @property
    def supports_async(self) -> bool:  # type: ignore[override]
        return True

    def provider_for(self, model: ModelSpec) -> Provider:
        provider = self._routes.get((model.provider, model.identifier)) or self._routes.get(
            model.provider
        )
        if provider is not None:
            return provider
        if not self.auto_create:
            known = ", ".join(repr(k) for k in self._routes) or "none"
            raise ConfigurationError(
                f"no provider routed for model {model.identifier!r} (provider "
                f"{model.provider!r}); routes: {known}. Add "
                f"({model.provider!r}, {model.identifier!r}) to the ProviderRouter."
            )
        fn = model.options.get("fn")
        name = self.client_for(model)
        key: Any = (name, id(fn)) if fn is not None else name
        with self._lock:
            provider = self._created.get(key)
            if provider is None:
                options = {"fn": fn} if fn is not None else {}
                provider = _create(name, options)
                self._created[key] = provider
        return provider

    def client_for(self, model: ModelSpec) -> str:
        """The provider that sends ``model``'s requests when created here: its own, except that
        a ``litellm`` model may go through the ``native`` OpenAI client (see ``client``)."""
        return client_for(model, self.client)

    def execute(self, task: GenerationTask, *, timeout: float | None = None) -> ProviderResponse:
        return self.provider_for(task.model).generate(task, timeout=timeout)

    async def aexecute(
        self, task: GenerationTask, *, timeout: float | None = None
    ) -> ProviderResponse:
        provider = self.provider_for(task.model)
        return await provider.agenerate(task, timeout=timeout)

    def close(self) -> None:
        for provider in list(self._routes.values()) + list(self._created.values()):
            provider.close()


def default_executor(
    client: str | None = None, *, router: ProviderRouter | None = None
) -> FailFastExecutor:
    """The executor of a run given none: the default router for ``client``, behind fail-fast.

    Every place that sends a run's requests (this process, worker processes, Ray and Dask
    workers) builds it here, so all honour ``client`` and stop an endpoint that never answers.
    ``router`` reuses a default router built earlier (its connections) under a fresh count.
    """
    return FailFastExecutor(router if router is not None else ProviderRouter(client=client))


def _create(name: str, options: dict[str, Any]) -> Provider:
    return create_provider("openai_native" if name == "native" else name, **options)
