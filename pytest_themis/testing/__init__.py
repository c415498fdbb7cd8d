"""Testing utilities shipped with pytest-themis: a fault-injecting OpenAI-compatible server.

Names are loaded on first access (only the standard library is used), which also lets
``python -m pytest_themis.testing.openai_server`` run without a double import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["FaultPlan", "OpenAIServer", "ServerStats", "default_responder"]

if TYPE_CHECKING:  # pragma: no cover
    from .openai_server import FaultPlan, OpenAIServer, ServerStats, default_responder


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'pytest_themis.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(".openai_server", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
