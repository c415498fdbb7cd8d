"""Several samples (epochs) per row: clustered intervals, pass@j for every j ≤ k, maj@k."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

from ..core.entities import EvaluationRecord, MetricAggregate
from ..core.statistics import aggregate, t_critical
from .statistics import maj_at_k, pass_at_k

__all__ = ["clustered_aggregate", "epoch_metrics"]


def clustered_aggregate(
    name: str, values: Sequence[float], sample_ids: Sequence[str], clusters: Sequence[str]
) -> MetricAggregate:
    """Mean of ``values`` with a cluster-robust standard error (rows as clusters) and a t CI."""
    n = len(values)
    totals: dict[str, float] = defaultdict(float)
    sizes: dict[str, int] = defaultdict(int)
    for value, cluster in zip(values, clusters, strict=True):
        totals[cluster] += value
        sizes[cluster] += 1
    groups = len(totals)
    if n == 0 or groups < 2:
        return aggregate(name, values, sample_ids)
    mean = math.fsum(values) / n
    spread = math.fsum((totals[c] - mean * sizes[c]) ** 2 for c in totals)
    stderr = math.sqrt(spread * groups / (groups - 1)) / n
    half = t_critical(groups - 1) * stderr
    return MetricAggregate(
        name, n, mean, stderr, mean - half, mean + half, "cluster", list(values), list(sample_ids)
    )


def epoch_metrics(
    records: Iterable[EvaluationRecord], metric_names: Sequence[str]
) -> dict[str, MetricAggregate]:
    """Aggregates for a cell with several samples per row (empty with one sample per row).

    Every metric gets a clustered interval. For the first metric whose scores are all 0/1:
    ``pass@j`` for j = 1 … k (the unbiased estimator, averaged over rows that have at least j
    scored samples) and ``maj@k`` (the majority-vote answer of each row is right).
    """
    scored = [r for r in records if r.generation.error is None]
    epochs = 1 + max((r.task.sample_index for r in scored), default=0)
    if epochs < 2:
        return {}
    out: dict[str, MetricAggregate] = {}
    binary: str | None = None
    for name in metric_names:
        kept = [
            (r, r.scores[name].value)
            for r in scored
            if name in r.scores and not math.isnan(r.scores[name].value)
        ]
        values = [v for _, v in kept]
        ids = [f"{r.row_id}#{r.task.sample_index}" for r, _ in kept]
        out[name] = clustered_aggregate(name, values, ids, [r.row_id for r, _ in kept])
        if binary is None and values and all(v in (0.0, 1.0) for v in values):
            binary = name
    if binary is None:
        return out
    by_row: dict[str, list[EvaluationRecord]] = defaultdict(list)
    for r in scored:
        if binary in r.scores and not math.isnan(r.scores[binary].value):
            by_row[r.row_id].append(r)
    rows = sorted(by_row)
    for j in range(1, epochs + 1):
        usable = [row for row in rows if len(by_row[row]) >= j]
        values = [
            pass_at_k(
                len(by_row[row]),
                sum(1 for r in by_row[row] if r.scores[binary].value == 1.0),
                j,
            )
            for row in usable
        ]
        out[f"pass@{j}"] = aggregate(f"pass@{j}", values, usable)
    majority = [
        maj_at_k(
            [_answer(r) for r in by_row[row]],
            [r.scores[binary].value == 1.0 for r in by_row[row]],
        )
        for row in rows
    ]
    out[f"maj@{epochs}"] = aggregate(f"maj@{epochs}", majority, rows)
    return out


def _answer(record: EvaluationRecord) -> str | None:
    if record.extraction_error is not None or record.prediction is None:
        return None
    return str(record.prediction).strip()
