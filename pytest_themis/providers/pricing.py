"""What a call to an OpenAI-compatible endpoint cost, without importing litellm for it.

The native client prices a call from the user's per-token price options, else from litellm's
cost map when litellm is already loaded, else from the price file litellm ships, read as text
(a model name absent from its text is unpriced without parsing 3 MB of JSON).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from ..core.entities import TokenUsage

__all__ = ["native_cost"]

_PRICE_FILE = "model_prices_and_context_window_backup.json"


def native_cost(
    identifier: str, usage: TokenUsage | None, options: Mapping[str, Any]
) -> float | None:
    """USD for one call of ``identifier`` (``openai/<model>``, ``text-completion-openai/<model>``)
    from the ``input_cost_per_token``/``output_cost_per_token`` options, else litellm's cost map
    when litellm is already loaded, else its bundled price file read as text; None if unpriced."""
    if usage is None:
        return None
    prompt_price = options.get("input_cost_per_token")
    completion_price = options.get("output_cost_per_token")
    if prompt_price is not None or completion_price is not None:
        return (
            float(prompt_price or 0.0) * usage.prompt_tokens
            + float(completion_price or 0.0) * usage.completion_tokens
        )
    provider, slash, model = identifier.partition("/")
    if not slash:
        provider, model = "openai", identifier
    litellm = sys.modules.get("litellm")
    if litellm is None:
        return _cost_from_price_file(model, usage)
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model,
            custom_llm_provider=(
                "text-completion-openai" if provider == "text-completion-openai" else "openai"
            ),
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
        )
    except Exception:  # noqa: BLE001 - unknown models raise; cost is optional
        return None
    cost = float(prompt_cost) + float(completion_cost)
    return cost if cost == cost and cost >= 0 else None


@functools.lru_cache(maxsize=1)
def _price_text() -> str:
    """litellm's bundled price table as text ('' without litellm); litellm is not imported."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return ""
    path = os.path.join(spec.submodule_search_locations[0], _PRICE_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return ""


@functools.lru_cache(maxsize=1)
def _price_table() -> dict[str, tuple[float, float] | None]:
    """Model name -> flat (input, output) price per token, None for an entry without one."""
    try:
        table = json.loads(_price_text() or "{}")
    except ValueError:
        return {}
    if not isinstance(table, dict):
        return {}
    return {str(name): _flat_price(entry) for name, entry in table.items() if entry}


def _flat_price(entry: Any) -> tuple[float, float] | None:
    if not isinstance(entry, Mapping):
        return None
    prompt_price = entry.get("input_cost_per_token")
    completion_price = entry.get("output_cost_per_token")
    if not isinstance(prompt_price, (int, float)) or not isinstance(completion_price, (int, float)):
        return None
    return float(prompt_price), float(completion_price)


@functools.lru_cache(maxsize=256)
def _listed_price(name: str) -> tuple[float, float] | None:
    """The flat price of ``name`` (or ``openai/<name>``) in the bundled table, else None.

    A plain name that does not occur in the table's text is unpriced without parsing the
    table (a local server's model, typically): parsing 3 MB of JSON costs tens of ms of CPU.
    """
    text = _price_text()
    plain = name.isascii() and '"' not in name and "\\" not in name
    if plain and f'"{name}"' not in text and f'"openai/{name}"' not in text:
        return None
    table = _price_table()
    return table[name] if name in table else table.get("openai/" + name)


def _cost_from_price_file(name: str, usage: TokenUsage) -> float | None:
    """Per-token price of ``name`` from the bundled table (flat prices only), else None."""
    price = _listed_price(name)
    if price is None:
        return None
    return price[0] * usage.prompt_tokens + price[1] * usage.completion_tokens
