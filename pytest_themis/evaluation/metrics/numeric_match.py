"""NumericMatch: exact numeric equality of GSM8K-style answers (no float rounding)."""

from __future__ import annotations

import functools
import math
from decimal import Decimal
from typing import Any

from ...core.entities import MetricScore
from .._numbers import to_fraction
from ..extractors import gsm8k_answer
from .base import Metric

__all__ = ["NumericMatch"]


class NumericMatch(Metric):
    """1.0 when prediction and reference are the same number.

    Both sides go through the GSM8K answer rules (``"#### 18"``, ``"$1,234.00"``, ``"18.0"``)
    and are compared as exact fractions, so ``18.0 == 18`` and ``0.1 + 0.2`` style float
    artefacts cannot occur. A prediction without a number scores 0; a reference without one
    is a dataset error.
    """

    value_range = (0.0, 1.0)

    def compute(self, prediction: str, reference: Any) -> MetricScore:
        gold_text = _as_text(reference)
        gold = _gold_answer(gold_text) if gold_text is not None else None
        if gold is None:
            raise ValueError(
                f"NumericMatch reference {reference!r:.80} holds no number; check the "
                "dataset's reference field"
            )
        predicted = gsm8k_answer(prediction or "")
        if predicted is None:
            return MetricScore(self.name, 0.0, {"reference": gold, "unparsed_prediction": True})
        if predicted == gold:
            equal = True
        else:
            left, right = to_fraction(predicted), to_fraction(gold)
            # Canonical strings are unique per value, so they are an exact fallback for numbers
            # too long for Fraction (Python caps int() conversion at a few thousand digits).
            equal = left == right if left is not None and right is not None else False
        return MetricScore(
            self.name, 1.0 if equal else 0.0, {"prediction": predicted, "reference": gold}
        )


@functools.lru_cache(maxsize=16384)
def _gold_answer(text: str) -> str | None:
    """Parsed reference; cached because every cell and sample of a row shares it."""
    return gsm8k_answer(text)


def _as_text(reference: Any) -> str | None:
    if reference is None or isinstance(reference, bool):
        return None
    if isinstance(reference, str):
        return reference
    if isinstance(reference, float):
        if not math.isfinite(reference):
            return None
        return format(Decimal(repr(reference)), "f")
    if isinstance(reference, Decimal):
        return format(reference, "f")
    return str(reference)
