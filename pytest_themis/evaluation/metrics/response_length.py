"""ResponseLength: how long the raw response is (characters or words)."""

from __future__ import annotations

from typing import Any

from ...errors import ConfigurationError
from .base import Metric

__all__ = ["ResponseLength"]

_UNITS = ("chars", "words")


class ResponseLength(Metric):
    """Length of the raw response in ``unit`` (``"chars"`` or ``"words"``); needs no reference."""

    requires_reference = False
    uses_raw_text = True

    def __init__(self, unit: str = "chars") -> None:
        if unit not in _UNITS:
            raise ConfigurationError(
                f"ResponseLength unit={unit!r} is not supported; use one of {', '.join(_UNITS)}"
            )
        self.unit = unit

    def params(self) -> dict[str, Any]:
        return {"unit": self.unit}

    def compute(self, prediction: str, reference: Any = None) -> float:
        text = prediction or ""
        return float(len(text) if self.unit == "chars" else len(text.split()))
