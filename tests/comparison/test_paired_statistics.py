"""Paired statistics against independent references (scipy, enumeration, hand-checked tables)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
import scipy.stats as scipy_stats  # noqa: E402 - the [test] extra

from pytest_themis.comparison.statistics import (
    holm,
    maj_at_k,
    mcnemar_exact,
    minimum_detectable_difference,
    newcombe_paired_interval,
    paired_bootstrap,
    paired_bootstraps,
    pass_at_k,
    rows_needed,
)


@pytest.mark.parametrize(
    "worse,better",
    [(0, 0), (0, 1), (1, 0), (3, 3), (5, 0), (0, 12), (7, 19), (40, 25), (130, 170), (2, 998)],
)
def test_mcnemar_matches_scipy_binomtest(worse: int, better: int) -> None:
    n = worse + better
    expected = 1.0 if n == 0 else scipy_stats.binomtest(worse, n, 0.5).pvalue
    assert mcnemar_exact(worse, better) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_mcnemar_is_symmetric_and_rejects_negative_counts() -> None:
    assert mcnemar_exact(4, 11) == mcnemar_exact(11, 4)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def _pass_at_k_enumerated(n: int, c: int, k: int) -> Fraction:
    """Share of k-subsets of n samples (c right) holding at least one right sample."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    hits = sum(1 for s in subsets if any(samples[i] for i in s))
    return Fraction(hits, len(subsets))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_pass_at_k_matches_enumeration_over_subsets(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            expected = float(_pass_at_k_enumerated(n, c, k))
            assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12), (n, c, k)


def test_pass_at_k_rejects_k_beyond_samples() -> None:
    with pytest.raises(ValueError, match="k=6"):
        pass_at_k(5, 2, 6)
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)


def test_holm_against_hand_checked_table() -> None:
    # sorted: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06), 0.04 (x1 -> max so far 0.06)
    assert holm([0.04, 0.01, 0.03, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    # a large first p-value caps everything after it (monotone step-down) and clips at 1
    assert holm([0.5, 0.001, 0.2]) == pytest.approx([0.5, 0.003, 0.4])
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])
    adjusted = holm([math.nan, 0.02])
    assert math.isnan(adjusted[0]) and adjusted[1] == pytest.approx(0.02)
    assert holm([]) == []


def test_newcombe_interval_exact_coverage_by_enumerating_every_table() -> None:
    # Exact coverage at n=40: sum the multinomial probability of every 2x2 table whose interval
    # holds the true difference (no simulation). Newcombe reports coverage close to nominal.
    n = 40
    probs = (0.55, 0.15, 0.05, 0.25)  # both, only_new, only_base, neither
    truth = probs[1] - probs[2]
    coverage = 0.0
    for a in range(n + 1):
        for b in range(n + 1 - a):
            for c in range(n + 1 - a - b):
                d = n - a - b - c
                weight = math.factorial(n) / (
                    math.factorial(a) * math.factorial(b) * math.factorial(c) * math.factorial(d)
                )
                p = weight * probs[0] ** a * probs[1] ** b * probs[2] ** c * probs[3] ** d
                low, high = newcombe_paired_interval(a, b, c, d)
                coverage += p if low <= truth <= high else 0.0
    assert 0.93 <= coverage <= 0.99


def test_newcombe_interval_contains_difference_and_collapses_for_identical_runs() -> None:
    low, high = newcombe_paired_interval(150, 2, 30, 18)
    assert low < (2 - 30) / 200 < high < 0
    low, high = newcombe_paired_interval(160, 0, 0, 40)
    assert -0.02 < low <= 0.0 <= high < 0.02


def test_bootstrap_is_seeded_and_matches_the_mean() -> None:
    diffs = [0.1, -0.3, 0.25, 0.0, 0.4, -0.05, 0.2, 0.15] * 5
    first = paired_bootstrap(diffs, seed=3)
    again = paired_bootstrap(diffs, seed=3)
    assert first == again
    assert first.estimate == pytest.approx(sum(diffs) / len(diffs))
    assert first.ci_low < first.estimate < first.ci_high
    assert first.resamples == 10_000


def test_bootstrap_of_a_single_cluster_claims_nothing() -> None:
    result = paired_bootstrap([0.5, 0.25, 0.75], ["r1", "r1", "r1"])
    assert result.estimate == 0.5
    assert math.isnan(result.ci_low) and math.isnan(result.p_value)


def test_bootstrap_all_zero_differences_is_a_point() -> None:
    result = paired_bootstrap([0.0] * 50)
    assert (result.estimate, result.ci_low, result.ci_high, result.p_value) == (0, 0, 0, 1)


def test_bootstrap_detects_a_clear_shift_and_not_noise() -> None:
    import numpy as np

    rng = np.random.default_rng(11)
    shifted = paired_bootstrap(list(rng.normal(-0.3, 1.0, 400)), seed=1)
    assert shifted.ci_high < 0 and shifted.p_value < 0.001
    noise = paired_bootstrap(list(rng.normal(0.0, 1.0, 400)), seed=1)
    assert noise.p_value > 0.05 or noise.ci_low < 0 < noise.ci_high


def test_cluster_bootstrap_widens_the_interval_of_correlated_epochs() -> None:
    import numpy as np

    rng = np.random.default_rng(5)
    per_row = rng.normal(0.0, 1.0, 100)
    diffs = list(np.repeat(per_row, 5))  # five identical epochs per row
    rows = [f"r{i}" for i in range(100) for _ in range(5)]
    naive = paired_bootstrap(diffs, seed=2)
    clustered = paired_bootstrap(diffs, rows, seed=2)
    assert clustered.estimate == pytest.approx(naive.estimate)
    # 5 perfectly correlated epochs carry the information of one: stderr grows by ~sqrt(5)
    assert clustered.stderr / naive.stderr == pytest.approx(math.sqrt(5), rel=0.15)


def test_cluster_bootstrap_multinomial_path_equals_index_path_in_distribution() -> None:
    # 0/1 differences have three distinct values (multinomial path); a unique jitter per pair
    # forces the index-resampling path. Both must give the same interval up to Monte Carlo error.
    diffs = [1.0] * 30 + [-1.0] * 10 + [0.0] * 160
    jittered = [d + (i - 100) * 1e-9 for i, d in enumerate(diffs)]
    fast = paired_bootstrap(diffs, seed=4)
    slow = paired_bootstrap(jittered, seed=4)
    assert fast.ci_low == pytest.approx(slow.ci_low, abs=0.01)
    assert fast.ci_high == pytest.approx(slow.ci_high, abs=0.01)
    assert fast.stderr == pytest.approx(slow.stderr, rel=0.05)


@pytest.mark.slow
def test_bootstrap_interval_coverage_is_at_least_93_percent() -> None:
    import numpy as np

    rng = np.random.default_rng(2024)
    true_diff, covered, datasets = 0.05, 0, 1000
    for i in range(datasets):
        base = rng.beta(2, 2, 120)
        new = np.clip(base + true_diff + rng.normal(0, 0.15, 120), -1, 2)
        result = paired_bootstrap(list(new - base), resamples=2000, seed=i)
        covered += result.ci_low <= true_diff <= result.ci_high
    assert covered / datasets >= 0.93


def test_minimum_detectable_difference_and_rows_needed() -> None:
    # z_0.975 + z_0.8 = 2.8016; stderr sqrt(p_disc / n) with 10% discordance at n=100
    stderr = math.sqrt(0.1 / 100)
    assert minimum_detectable_difference(stderr) == pytest.approx(2.8016 * stderr, rel=1e-4)
    mdd = minimum_detectable_difference(stderr)
    needed = rows_needed(100, mdd, 0.02)
    assert needed == math.ceil(100 * (mdd / 0.02) ** 2)
    # at the needed n the MDD is at most the margin
    assert minimum_detectable_difference(math.sqrt(0.1 / needed)) <= 0.02 + 1e-12


def test_maj_at_k() -> None:
    assert maj_at_k(["4", "4", "5"], [True, True, False]) == 1.0
    assert maj_at_k(["5", "4", "5"], [False, True, False]) == 0.0
    assert maj_at_k(["4", "5"], [True, False]) == 1.0  # tie: first seen wins
    assert maj_at_k([None, None], [False, False]) == 0.0


def test_metrics_on_the_same_rows_share_the_resampled_rows() -> None:
    import numpy as np

    rng = np.random.default_rng(8)
    diffs = list(rng.normal(0.1, 1.0, 300))
    rows = [f"r{i}" for i in range(300)]
    other = [f"s{i}" for i in range(300)]
    doubled, alone, elsewhere = paired_bootstraps(
        [(diffs, rows), ([2 * d for d in diffs], rows), (diffs, other)], seed=5
    )
    # same rows: every replicate takes the same rows, so a doubled metric doubles exactly
    assert (alone.ci_low, alone.ci_high) == pytest.approx((2 * doubled.ci_low, 2 * doubled.ci_high))
    assert alone.stderr == pytest.approx(2 * doubled.stderr)
    # other rows are resampled on their own: same data, a different (still seeded) draw
    assert elsewhere.estimate == doubled.estimate and elsewhere.ci_low != doubled.ci_low
