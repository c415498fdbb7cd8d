"""Paired statistics for comparing two runs on the same rows.

Pure functions: exact McNemar, Newcombe's interval for paired proportions, the (cluster) paired
bootstrap, Holm–Bonferroni, the minimum detectable difference, and pass@k / maj@k. numpy is
imported inside the bootstrap only; nothing here needs scipy.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.statistics import wilson_interval

__all__ = [
    "ALPHA",
    "BOOTSTRAP_RESAMPLES",
    "BootstrapResult",
    "holm",
    "maj_at_k",
    "mcnemar_exact",
    "minimum_detectable_difference",
    "newcombe_paired_interval",
    "paired_bootstrap",
    "paired_bootstraps",
    "pass_at_k",
    "rows_needed",
]

ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 10_000
_Z_ALPHA = 1.959963984540054  # two-sided 5%
_Z_POWER = 0.8416212335729143  # 80% power


def mcnemar_exact(worse: int, better: int) -> float:
    """Two-sided exact McNemar p-value: binomial test of ``worse`` vs ``better`` at p = 1/2.

    ``worse`` counts pairs right in the baseline and wrong in the new run, ``better`` the
    reverse. Computed in log space, so any number of discordant pairs is exact to float precision.
    """
    if worse < 0 or better < 0:
        raise ValueError("discordant pair counts must be >= 0")
    n = worse + better
    if n == 0:
        return 1.0
    k = min(worse, better)
    if 2 * k == n:
        return 1.0
    log_half_n = n * math.log(0.5)
    logs = [_log_comb(n, i) + log_half_n for i in range(k + 1)]
    top = max(logs)
    tail = math.exp(top) * math.fsum(math.exp(v - top) for v in logs)
    return min(1.0, 2.0 * tail)


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def newcombe_paired_interval(
    both: int, only_new: int, only_base: int, neither: int
) -> tuple[float, float]:
    """95% interval for p_new − p_base from a paired 2×2 table (Newcombe 1998, method 10).

    ``both``: right in both runs; ``only_new``: right only in the new run; ``only_base``: right
    only in the baseline; ``neither``: wrong in both.
    """
    n = both + only_new + only_base + neither
    if n == 0:
        return (math.nan, math.nan)
    new_right = both + only_new
    base_right = both + only_base
    p1, p2 = new_right / n, base_right / n
    l1, u1 = wilson_interval(new_right, n)
    l2, u2 = wilson_interval(base_right, n)
    margins = (both + only_new) * (only_base + neither) * (both + only_base) * (only_new + neither)
    phi = (both * neither - only_new * only_base) / math.sqrt(margins) if margins else 0.0
    diff = p1 - p2
    low_sq = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    high_sq = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    low = max(-1.0, diff - math.sqrt(max(0.0, low_sq)))
    high = min(1.0, diff + math.sqrt(max(0.0, high_sq)))
    return (low, high)


@dataclass(frozen=True)
class BootstrapResult:
    """Point estimate, percentile 95% interval, two-sided p-value and standard error."""

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    stderr: float
    resamples: int


def paired_bootstrap(
    differences: Sequence[float],
    clusters: Sequence[Hashable] | None = None,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> BootstrapResult:
    """Paired (cluster) bootstrap of the mean of ``differences`` (new − baseline per pair).

    With ``clusters`` (one label per pair, e.g. the row id when a row has several epochs) whole
    clusters are resampled and the estimate is the ratio of summed differences to pairs, so the
    interval accounts for the correlation inside a row. The p-value tests a zero mean
    difference against the bootstrap distribution centred on the estimate. One job of
    :func:`paired_bootstraps`.
    """
    labels = clusters if clusters is not None else range(len(differences))
    return paired_bootstraps([(differences, labels)], resamples=resamples, seed=seed)[0]


def paired_bootstraps(
    jobs: Sequence[tuple[Sequence[float], Sequence[Hashable]]],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> list[BootstrapResult]:
    """:func:`paired_bootstrap` of several ``(differences, clusters)`` jobs, one result each.

    Jobs whose cluster labels are the same sequence (the same rows: several metrics of a cell,
    or cells run on the same rows) share one resampling of those clusters: each bootstrap
    replicate takes the same rows for all of them, as a paired multi-metric comparison should,
    and each job's own distribution is exactly that of a bootstrap on its own. The shared
    index draws are the bulk of the work, so this is also much faster than one bootstrap per
    job. Vectorised: indices are drawn in chunks that stay in the CPU cache; when a job has few
    distinct cluster values (0/1 metrics), its replicates are multinomial counts of those
    values instead, which has the same distribution as resampling the clusters themselves.
    """
    if resamples < 1:
        raise ValueError("resamples must be >= 1")
    if not jobs:
        return []
    import numpy as np

    nan = math.nan
    results: list[BootstrapResult] = [BootstrapResult(nan, nan, nan, nan, nan, 0)] * len(jobs)
    groups: dict[tuple[Hashable, ...], list[tuple[int, Any, Any, float]]] = {}
    for i, (differences, clusters) in enumerate(jobs):
        n_pairs = len(differences)
        if len(clusters) != n_pairs:
            raise ValueError("clusters needs one label per difference")
        if n_pairs == 0:
            continue
        labels: dict[Hashable, int] = {}
        index = np.fromiter((labels.setdefault(c, len(labels)) for c in clusters), int, n_pairs)
        totals = np.bincount(index, weights=np.asarray(differences, dtype=float))
        sizes = np.bincount(index).astype(float)
        estimate = float(totals.sum() / sizes.sum())
        if len(totals) < 2:  # one cluster: resampling cannot show any spread
            results[i] = BootstrapResult(estimate, nan, nan, nan, nan, 0)
            continue
        groups.setdefault(tuple(labels), []).append((i, totals, sizes, estimate))
    for number, members in enumerate(groups.values()):
        rng = np.random.default_rng([seed, number])
        stats = _resample_group(np, rng, [(t, z) for _, t, z, _ in members], resamples)
        for (i, _, _, estimate), column in zip(members, stats, strict=True):
            results[i] = _summary(np, column, estimate, resamples)
    return results


def _summary(np: Any, stats: Any, estimate: float, resamples: int) -> BootstrapResult:
    low, high = np.quantile(stats, [0.025, 0.975])
    centred = np.abs(stats - estimate)
    extreme = int(np.count_nonzero(centred >= abs(estimate) - 1e-12))
    p_value = 1.0 if estimate == 0 else min(1.0, (extreme + 1) / (resamples + 1))
    return BootstrapResult(
        estimate, float(low), float(high), p_value, float(stats.std(ddof=1)), resamples
    )


#: Indices drawn per chunk of replicates: small enough to stay in the CPU cache.
_CHUNK_INDICES = 1 << 18


def _resample_group(np: Any, rng: Any, jobs: list[tuple[Any, Any]], resamples: int) -> list[Any]:
    """Bootstrap ratios sum(totals)/sum(sizes) of each job, over one resampling of clusters."""
    n = len(jobs[0][0])
    out: list[Any] = [None] * len(jobs)
    shared: list[int] = []
    for j, (totals, sizes) in enumerate(jobs):
        distinct, counts = np.unique(np.stack([totals, sizes], axis=1), axis=0, return_counts=True)
        if len(distinct) * 4 <= n:  # few distinct clusters: multinomial counts of each kind
            draws = rng.multinomial(n, counts / n, size=resamples).astype(float)
            out[j] = (draws @ distinct[:, 0]) / (draws @ distinct[:, 1])
        else:
            shared.append(j)
            out[j] = np.empty(resamples)
    if not shared:
        return out
    # balanced clusters (every row once, or every row with all epochs): the ratio is a mean
    equal = {j: bool((jobs[j][1] == jobs[j][1][0]).all()) for j in shared}
    chunk = max(1, _CHUNK_INDICES // n)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        # native-width indices: np.take then needs no conversion pass (3x faster than int32)
        idx = rng.integers(0, n, size=(stop - start, n), dtype=np.intp)
        for j in shared:
            totals, sizes = jobs[j]
            picked = np.take(totals, idx).sum(axis=1)
            out[j][start:stop] = (
                picked / (n * sizes[0]) if equal[j] else picked / np.take(sizes, idx).sum(axis=1)
            )
    return out


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order (NaNs stay NaN and do not count)."""
    indexed = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    m = len(indexed)
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(indexed)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def minimum_detectable_difference(stderr: float) -> float:
    """Smallest true difference a two-sided 5% test finds with 80% power, given its stderr."""
    if math.isnan(stderr):
        return math.nan
    return (_Z_ALPHA + _Z_POWER) * stderr


def rows_needed(rows: int, mdd: float, margin: float) -> int:
    """Rows needed for the minimum detectable difference to shrink to ``margin`` (∝ 1/√n)."""
    if margin <= 0 or math.isnan(mdd) or mdd <= 0:
        return rows
    return math.ceil(rows * (mdd / margin) ** 2)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021): P(at least one of k draws of n samples is right).

    ``n`` samples of which ``c`` are right; ``1 - C(n-c, k) / C(n, k)``, computed as a product.
    """
    if not 0 < k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n, got k={k}, n={n}")
    if not 0 <= c <= n:
        raise ValueError(f"correct count must be in [0, n], got c={c}, n={n}")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def maj_at_k(answers: Sequence[Hashable], correct: Sequence[bool]) -> float:
    """Majority vote: 1.0 when the most frequent answer (first seen wins ties) is right.

    ``answers[i]`` is the extracted answer of sample ``i`` (None for a failed extraction, which
    never wins) and ``correct[i]`` whether that answer scored as right.
    """
    if len(answers) != len(correct):
        raise ValueError("answers and correct must have the same length")
    votes = Counter(a for a in answers if a is not None)
    if not votes:
        return 0.0
    best = max(votes.values())
    winner = next(a for a in answers if a is not None and votes[a] == best)
    return 1.0 if any(ok for a, ok in zip(answers, correct, strict=True) if a == winner) else 0.0
