"""Aggregates: Wilson intervals for 0/1 metrics, Student t otherwise; metric-name lookup."""

from __future__ import annotations

import math
import random

import pytest

from pytest_themis.core.entities import MetricMap
from pytest_themis.evaluation.statistics import aggregate, t_critical, wilson_interval


def test_wilson_matches_known_values():
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and high == pytest.approx(0.1611, abs=1e-4)


def test_binary_metrics_use_wilson_and_stay_in_bounds():
    agg = aggregate("ExactMatch", [1.0] * 10)
    assert agg.ci_method == "wilson" and agg.mean == 1.0 and agg.ci_high == 1.0 and agg.ci_low < 1.0


def test_continuous_metrics_use_t_interval():
    values = [1.0, 2.0, 3.0, 4.0]
    agg = aggregate("ResponseLength", values)
    sd = math.sqrt(sum((v - 2.5) ** 2 for v in values) / 3)
    half = 3.182 * sd / 2
    assert agg.ci_method == "t"
    assert agg.ci_low == pytest.approx(2.5 - half) and agg.ci_high == pytest.approx(2.5 + half)


def test_t_critical_is_continuous_past_the_table():
    assert t_critical(30) == pytest.approx(2.042, abs=1e-3)
    assert t_critical(31) == pytest.approx(2.040, abs=2e-3)
    assert t_critical(1000) == pytest.approx(1.962, abs=1e-3)


def test_wilson_coverage_is_close_to_95_percent():
    rng = random.Random(7)
    hits = 0
    for _ in range(2000):
        successes = sum(rng.random() < 0.3 for _ in range(60))
        low, high = wilson_interval(successes, 60)
        hits += low <= 0.3 <= high
    assert 0.92 <= hits / 2000 <= 0.97


def test_empty_aggregate_is_nan_not_zero():
    agg = aggregate("ExactMatch", [])
    assert agg.count == 0 and math.isnan(agg.mean)


def test_metric_map_accepts_snake_and_camel_names():
    metrics = MetricMap({"ExactMatch": aggregate("ExactMatch", [1.0, 0.0])})
    assert metrics["exact_match"].mean == 0.5 and "exact-match" in metrics
    with pytest.raises(KeyError, match="available: ExactMatch"):
        metrics["accuracy"]
