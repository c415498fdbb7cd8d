"""Contains: the reference appears somewhere in the raw response."""

from __future__ import annotations

from typing import Any

from .base import Metric

__all__ = ["Contains"]


class Contains(Metric):
    """1.0 when the reference string occurs in the raw response (any of them, for a list)."""

    value_range = (0.0, 1.0)

    uses_raw_text = True

    def __init__(self, case_sensitive: bool = False) -> None:
        self.case_sensitive = bool(case_sensitive)

    def params(self) -> dict[str, Any]:
        return {"case_sensitive": self.case_sensitive}

    def compute(self, prediction: str, reference: Any) -> float:
        golds = reference if isinstance(reference, (list, tuple)) else [reference]
        needles = [str(g) for g in golds if g is not None and str(g).strip()]
        if not needles:
            raise ValueError(
                f"Contains needs a non-empty reference string, got {reference!r}; check the "
                "dataset's reference field"
            )
        haystack = prediction or ""
        if not self.case_sensitive:
            haystack = haystack.casefold()
            needles = [n.casefold() for n in needles]
        return 1.0 if any(n.strip() in haystack for n in needles) else 0.0
