"""ExactMatch: the prediction equals the reference after light normalisation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...core.entities import MetricScore
from .base import Metric

__all__ = ["ExactMatch"]


class ExactMatch(Metric):
    """1.0 when prediction and reference are equal strings, else 0.0.

    By default the comparison ignores case, surrounding whitespace and runs of inner whitespace.
    A list/tuple reference means "any of these answers is correct".
    """

    value_range = (0.0, 1.0)

    def __init__(
        self, case_sensitive: bool = False, strip: bool = True, normalize_whitespace: bool = True
    ) -> None:
        self.case_sensitive = bool(case_sensitive)
        self.strip = bool(strip)
        self.normalize_whitespace = bool(normalize_whitespace)

    def params(self) -> dict[str, Any]:
        return {
            "case_sensitive": self.case_sensitive,
            "strip": self.strip,
            "normalize_whitespace": self.normalize_whitespace,
        }

    def _normalise(self, value: Any) -> str:
        text = value if isinstance(value, str) else str(value)
        if self.normalize_whitespace:
            text = " ".join(text.split()) if self.strip else _squash_inner(text)
        elif self.strip:
            text = text.strip()
        return text if self.case_sensitive else text.casefold()

    def compute(self, prediction: str, reference: Any) -> MetricScore:
        if reference is None:
            raise ValueError("ExactMatch needs a reference but got None")
        golds: Sequence[Any] = reference if isinstance(reference, (list, tuple)) else [reference]
        if not golds:
            raise ValueError("ExactMatch got an empty list of acceptable references")
        predicted = self._normalise(prediction)
        hit = any(predicted == self._normalise(gold) for gold in golds)
        return MetricScore(self.name, 1.0 if hit else 0.0)


def _squash_inner(text: str) -> str:
    """Collapse inner whitespace runs to one space but keep leading/trailing whitespace."""
    core = text.strip()
    if not core:
        return text
    head = text[: len(text) - len(text.lstrip())]
    tail = text[len(text.rstrip()) :]
    return head + " ".join(core.split()) + tail
