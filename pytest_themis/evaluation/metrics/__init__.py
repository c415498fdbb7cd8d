"""Built-in metrics. Heavy dependencies (math-verify, sympy) load only inside worker processes."""

from __future__ import annotations

from .base import Metric
from .contains import Contains
from .exact_match import ExactMatch
from .math_verify import MathVerifyAccuracy
from .numeric_match import NumericMatch
from .response_length import ResponseLength

__all__ = [
    "Contains",
    "ExactMatch",
    "MathVerifyAccuracy",
    "Metric",
    "NumericMatch",
    "ResponseLength",
]
