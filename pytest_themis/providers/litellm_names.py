"""litellm model names: which provider serves one, checked before any request.

An ``anthropic/…``-style name with a well-known prefix, or any name with an ``api_base``, is
accepted without importing litellm (so a run that only talks to OpenAI-compatible servers never
pays for it); other names are resolved by litellm, imported here once with its banners off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from ..errors import ConfigurationError

__all__ = ["WELL_KNOWN_PREFIXES", "import_litellm", "resolve_provider", "validate_model"]

#: Prefixes accepted without importing litellm (all are litellm providers).
WELL_KNOWN_PREFIXES = frozenset(
    {
        "anthropic", "azure", "azure_ai", "bedrock", "cohere", "deepseek", "fireworks_ai",
        "gemini", "groq", "hosted_vllm", "huggingface", "mistral", "ollama", "ollama_chat",
        "openai", "openrouter", "perplexity", "together_ai", "vertex_ai", "vllm", "xai",
    }
)  # fmt: skip

_litellm: ModuleType | None = None


def import_litellm() -> ModuleType:
    """Import litellm once, with the bundled cost map (no network fetch at import)."""
    global _litellm
    if _litellm is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        from ..core.setup_clock import setup_phase

        with setup_phase():  # seconds, not part of a run's reported time
            import litellm

        _quiet(litellm)
        _litellm = litellm
    return _litellm


def _quiet(litellm: ModuleType) -> None:
    """Switch off litellm's printed banners and its verbose logger (output only)."""
    setattr(litellm, "suppress_debug_info", True)  # noqa: B010 - untyped module attributes
    setattr(litellm, "set_verbose", False)  # noqa: B010
    import logging

    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def validate_model(identifier: str, options: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`ConfigurationError` when litellm cannot tell which provider serves
    ``identifier``. No network call; litellm is imported only when the prefix is not obvious."""
    options = options or {}
    if not isinstance(identifier, str) or not identifier.strip():
        raise ConfigurationError(f"litellm model must be a non-empty string, got {identifier!r}")
    if options.get("custom_llm_provider") or options.get("api_base") or options.get("base_url"):
        return
    if identifier.split("/", 1)[0] in WELL_KNOWN_PREFIXES and "/" in identifier:
        return
    if resolve_provider(identifier, None) is None:
        prefix, slash, rest = identifier.partition("/")
        close = _closest_provider(prefix) if slash else None
        if close is not None:
            raise ConfigurationError(
                f"litellm has no provider {prefix!r} (model {identifier!r}); did you mean "
                f"'{close}/{rest}'? Known providers include openai, anthropic, gemini, "
                "ollama; or set api_base to an OpenAI-compatible server"
            )
        raise ConfigurationError(
            f"litellm cannot tell which provider serves model {identifier!r}; write it with "
            f"a provider prefix, e.g. 'openai/{identifier}', 'anthropic/{identifier}' or "
            f"'ollama/{identifier}', or set api_base to an OpenAI-compatible server"
        )


def _closest_provider(prefix: str) -> str | None:
    """The litellm provider name closest to a mistyped ``prefix`` (None when none is close)."""
    import difflib

    names = [str(getattr(p, "value", p)) for p in getattr(import_litellm(), "provider_list", ())]
    names = sorted(set(names) | WELL_KNOWN_PREFIXES)
    # Prefer the well-known names on ties ("opneai" -> "openai", not "openai_like").
    for pool in (sorted(WELL_KNOWN_PREFIXES), names):
        found = difflib.get_close_matches(prefix.lower(), pool, n=1, cutoff=0.6)
        if found:
            return found[0]
    return None


def resolve_provider(identifier: str, api_base: str | None) -> str | None:
    """The litellm provider serving ``identifier`` (at ``api_base``), or None when unknown."""
    litellm = import_litellm()
    prefix = identifier.split("/", 1)[0]
    if "/" in identifier and prefix in getattr(litellm, "provider_list", ()):
        return prefix
    if api_base is None:
        info = getattr(litellm, "model_cost", {}).get(identifier)
        if isinstance(info, Mapping) and info.get("litellm_provider"):
            return str(info["litellm_provider"])
    try:
        _, provider, _, _ = litellm.get_llm_provider(model=identifier, api_base=api_base)
    except Exception:  # noqa: BLE001 - litellm raises BadRequestError for unknown models
        return None
    return str(provider) if provider else None
