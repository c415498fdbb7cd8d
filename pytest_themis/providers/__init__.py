"""Model providers: a registry plus the built-in ``fake``, ``litellm`` and ``python`` providers."""

from .base import Provider, create_provider, list_providers, register_provider

__all__ = ["Provider", "create_provider", "list_providers", "register_provider"]
