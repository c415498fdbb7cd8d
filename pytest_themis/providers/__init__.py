"""Model providers: a registry plus the built-in ``fake``, ``litellm``, ``openai_native`` and
``python`` providers (``openai_native`` is also the transport of ``litellm`` models that
:mod:`.clients` sends through the native OpenAI client)."""

from .base import Provider, create_provider, list_providers, register_provider

__all__ = ["Provider", "create_provider", "list_providers", "register_provider"]
