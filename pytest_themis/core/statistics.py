"""Confidence intervals for metric means: Wilson for 0/1 metrics, Student's t otherwise."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .entities import MetricAggregate

__all__ = ["aggregate", "t_critical", "wilson_interval"]

_Z95 = 1.959963984540054
# Two-sided 95% Student t critical values for small degrees of freedom.
_T95 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    11: 2.201,
    12: 2.179,
    13: 2.160,
    14: 2.145,
    15: 2.131,
    16: 2.120,
    17: 2.110,
    18: 2.101,
    19: 2.093,
    20: 2.086,
    21: 2.080,
    22: 2.074,
    23: 2.069,
    24: 2.064,
    25: 2.060,
    26: 2.056,
    27: 2.052,
    28: 2.048,
    29: 2.045,
    30: 2.042,
}


def t_critical(df: int) -> float:
    """Two-sided 95% critical value of Student's t (Cornish–Fisher expansion past df=30)."""
    if df <= 0:
        return math.inf
    if df in _T95:
        return _T95[df]
    z = _Z95
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


def wilson_interval(successes: float, n: int, z: float = _Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return (low, high)


def aggregate(
    name: str, values: Sequence[float], sample_ids: Sequence[str] = ()
) -> MetricAggregate:
    """Mean, standard error and 95% CI of ``values``; NaNs are not allowed here."""
    n = len(values)
    if n == 0:
        return MetricAggregate(name, 0, math.nan, math.nan, math.nan, math.nan, "none", [], [])
    total = math.fsum(values)
    mean = total / n
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    stderr = math.sqrt(var / n) if n > 1 else math.nan
    if all(v == 0.0 or v == 1.0 for v in values):
        low, high = wilson_interval(total, n)
        method = "wilson"
    elif n > 1:
        half = t_critical(n - 1) * stderr
        low, high = mean - half, mean + half
        method = "t"
    else:
        low, high, method = math.nan, math.nan, "t"
    return MetricAggregate(name, n, mean, stderr, low, high, method, list(values), list(sample_ids))
