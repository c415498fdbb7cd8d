"""Pair two runs' per-sample results cell by cell and compute the statistics and verdicts."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.entities import canonical_metric_name
from ..core.hashing import canonical_json
from ..errors import ConfigurationError
from .results import CellComparison, Comparison, MetricComparison, check_margin, is_regression
from .statistics import (
    ALPHA,
    BOOTSTRAP_RESAMPLES,
    holm,
    mcnemar_exact,
    minimum_detectable_difference,
    newcombe_paired_interval,
    paired_bootstraps,
    rows_needed,
)

__all__ = ["RunData", "compare_runs"]

_Sample = Mapping[str, Any]


@dataclass
class RunData:
    """A run as the comparison sees it: its manifest (cells, fingerprints) and its samples."""

    run_id: str
    manifest: Mapping[str, Any]
    samples: Sequence[_Sample] = field(repr=False)

    def cells(self) -> dict[tuple[str, str], Mapping[str, Any]]:
        """Manifest cell entries by (experiment, cell id)."""
        return {
            (str(c.get("experiment")), str(c["cell_id"])): c for c in self.manifest.get("cells", [])
        }

    def samples_by_cell(self) -> dict[tuple[str, str], list[_Sample]]:
        grouped: dict[tuple[str, str], list[_Sample]] = defaultdict(list)
        for s in self.samples:
            grouped[(str(s.get("experiment")), str(s["cell_id"]))].append(s)
        return grouped

    def dataset_fingerprints(self) -> set[str]:
        return {str(c.get("dataset")) for c in self.manifest.get("cells", [])}


def _match_key(cell: Mapping[str, Any]) -> str:
    model = cell.get("model") or {}
    return canonical_json(
        [
            cell.get("experiment"),
            model.get("provider"),
            model.get("identifier"),
            cell.get("template"),
            cell.get("sampling"),
        ]
    )


def compare_runs(
    new: RunData,
    baseline: RunData,
    *,
    margin: float = 0.0,
    mapping: Mapping[str, str] | None = None,
    alpha: float = ALPHA,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    family_size: int | None = None,
    check_dataset: bool = True,
) -> Comparison:
    """Compare ``new`` with ``baseline``.

    Cells match by experiment × model × template × sampling, or by ``mapping`` (new cell id →
    baseline cell id, e.g. model A against model B on the same prompt). Rows pair by row id ×
    epoch; rows in one run only, and rows with a generation error in either, are counted and
    left out. Holm's correction runs over every cell × metric compared; ``family_size`` (when
    larger) pads the family with p-values of 1, which bounds the adjusted p-values from above
    when the other comparisons of a session are not known yet. A baseline with no dataset
    fingerprint in common with ``new`` is a :class:`ConfigurationError` (``check_dataset=False``
    skips that check, for a part of a run whose whole was checked).
    """
    check_margin(margin, "margin")
    if check_dataset and new.dataset_fingerprints() and baseline.dataset_fingerprints():
        if not new.dataset_fingerprints() & baseline.dataset_fingerprints():
            raise ConfigurationError(
                f"baseline {baseline.run_id} was recorded on another dataset (fingerprints "
                f"{', '.join(sorted(baseline.dataset_fingerprints()))[:80]}); compare runs of "
                "the same rows"
            )
    pairs = _match_cells(new, baseline, mapping)
    new_samples = new.samples_by_cell()
    base_samples = baseline.samples_by_cell()
    comparison = Comparison(new.run_id, baseline.run_id, float(margin), alpha)
    matched_base = set()
    pending: list[tuple[CellComparison, _Bootstrap]] = []
    for new_key, base_key in pairs.items():
        matched_base.add(base_key)
        cell, boots = _compare_cell(
            new.cells()[new_key],
            baseline.cells()[base_key],
            new_samples.get(new_key, []),
            base_samples.get(base_key, []),
        )
        comparison.cells.append(cell)
        pending += [(cell, b) for b in boots]
    _run_bootstraps(pending, resamples, seed)
    comparison.unmatched_new = sorted(f"{e}/{c}" for e, c in new.cells() if (e, c) not in pairs)
    comparison.unmatched_baseline = sorted(
        f"{e}/{c}" for e, c in baseline.cells() if (e, c) not in matched_base
    )
    _adjust_and_judge(comparison, family_size)
    return comparison


def _match_cells(
    new: RunData, baseline: RunData, mapping: Mapping[str, str] | None
) -> dict[tuple[str, str], tuple[str, str]]:
    base_cells = baseline.cells()
    by_key = {_match_key(c): k for k, c in base_cells.items()}
    pairs: dict[tuple[str, str], tuple[str, str]] = {}
    for key, cell in new.cells().items():
        if mapping and key[1] in mapping:
            wanted = mapping[key[1]]
            found = [k for k in base_cells if k[1] == wanted]
            same = [k for k in found if k[0] == key[0]]
            if not found:
                known = ", ".join(sorted({k[1] for k in base_cells})) or "none"
                raise ConfigurationError(
                    f"mapping {key[1]!r} -> {wanted!r}: the baseline has no cell {wanted!r}; "
                    f"its cells: {known}"
                )
            pairs[key] = (same or found)[0]
        elif _match_key(cell) in by_key:
            pairs[key] = by_key[_match_key(cell)]
    return pairs


def _template_hash(samples: Sequence[_Sample]) -> str | None:
    return next((str(s["template_hash"]) for s in samples if s.get("template_hash")), None)


def _compare_cell(
    new_cell: Mapping[str, Any],
    base_cell: Mapping[str, Any],
    new_samples: Sequence[_Sample],
    base_samples: Sequence[_Sample],
) -> tuple[CellComparison, list[_Bootstrap]]:
    """The cell's pairing and exact tests; the bootstrapped metrics are returned to be run
    together with every other cell's (see :func:`_run_bootstraps`)."""
    cell = CellComparison(
        experiment=str(new_cell.get("experiment")),
        cell_id=str(new_cell["cell_id"]),
        baseline_cell_id=str(base_cell["cell_id"]),
    )
    for label, field_name in (("dataset fingerprint", "dataset"), ("pipeline", "pipeline")):
        if new_cell.get(field_name) != base_cell.get(field_name):
            cell.changes.append(
                f"{label} changed: {str(base_cell.get(field_name))[:12]} -> "
                f"{str(new_cell.get(field_name))[:12]}"
            )
    new_t, base_t = _template_hash(new_samples), _template_hash(base_samples)
    if new_t != base_t:
        cell.changes.append(f"template changed: {str(base_t)[:12]} -> {str(new_t)[:12]}")
    new_by = {(str(s["row_id"]), int(s.get("epoch") or 0)): s for s in new_samples}
    base_by = {(str(s["row_id"]), int(s.get("epoch") or 0)): s for s in base_samples}
    common = [k for k in new_by if k in base_by]
    cell.only_new = len(new_by) - len(common)
    cell.only_baseline = len(base_by) - len(common)
    usable = []
    for key in common:
        if new_by[key].get("error") or base_by[key].get("error"):
            cell.errors += 1
        else:
            usable.append(key)
    cell.paired = len(usable)
    base_names = {canonical_metric_name(n): n for n in _score_names(base_samples)}
    names = [n for n in _score_names(new_samples) if canonical_metric_name(n) in base_names]
    boots: list[_Bootstrap] = []
    for name in names:
        base_name = base_names[canonical_metric_name(name)]
        triples = []
        for key in usable:
            a = new_by[key]["scores"].get(name)
            b = base_by[key]["scores"].get(base_name)
            if a is not None and b is not None:
                triples.append((key, float(a), float(b)))
        if triples:
            found = _compare_metric(name, triples)
            if isinstance(found, _Bootstrap):
                boots.append(found)
            cell.metrics[name] = found.result if isinstance(found, _Bootstrap) else found
    return cell, boots


def _score_names(samples: Sequence[_Sample]) -> list[str]:
    """Metric names in first-seen order (dicts keep insertion order; keys are few)."""
    names: dict[str, None] = {}
    for s in samples:
        names.update(dict.fromkeys(s.get("scores", {})))
    return list(names)


@dataclass
class _Bootstrap:
    """A metric to bootstrap: its differences, cluster labels, and the result to complete."""

    result: MetricComparison
    differences: list[float]
    clusters: list[str]


def _run_bootstraps(
    pending: list[tuple[CellComparison, _Bootstrap]], resamples: int, seed: int
) -> None:
    """Bootstrap every pending metric of the session at once (metrics and cells on the same
    rows share the resampling: :func:`paired_bootstraps`) and complete their results."""
    jobs = [(b.differences, b.clusters) for _, b in pending]
    for (cell, b), boot in zip(
        pending, paired_bootstraps(jobs, resamples=resamples, seed=seed), strict=True
    ):
        cell.metrics[b.result.metric] = dataclasses.replace(
            b.result,
            difference=boot.estimate,
            ci_low=boot.ci_low,
            ci_high=boot.ci_high,
            p_value=boot.p_value,
            stderr=boot.stderr,
            mdd=minimum_detectable_difference(boot.stderr),
        )


def _compare_metric(
    name: str, triples: list[tuple[tuple[str, int], float, float]]
) -> MetricComparison | _Bootstrap:
    n = len(triples)
    new_vals = [t[1] for t in triples]
    base_vals = [t[2] for t in triples]
    rows = {t[0][0] for t in triples}
    epochs = len(rows) < n
    binary = all(v in (0.0, 1.0) for v in new_vals + base_vals)
    new_mean, base_mean = math.fsum(new_vals) / n, math.fsum(base_vals) / n
    worse = better = None
    if binary:
        worse = sum(1 for a, b in zip(new_vals, base_vals, strict=True) if b == 1 and a == 0)
        better = sum(1 for a, b in zip(new_vals, base_vals, strict=True) if b == 0 and a == 1)
    if binary and not epochs:
        assert worse is not None and better is not None
        both = sum(1 for a, b in zip(new_vals, base_vals, strict=True) if a == 1 and b == 1)
        low, high = newcombe_paired_interval(both, better, worse, n - both - better - worse)
        diff = (better - worse) / n
        p_disc = (better + worse) / n
        stderr = math.sqrt(max(0.0, p_disc - diff * diff) / n)
        return MetricComparison(
            name, "mcnemar", n, len(rows), base_mean, new_mean, diff, low, high,
            mcnemar_exact(worse, better), stderr, minimum_detectable_difference(stderr),
            worse, better,
        )  # fmt: skip
    nan = math.nan
    placeholder = MetricComparison(
        name, "cluster-bootstrap" if epochs else "bootstrap", n, len(rows), base_mean, new_mean,
        nan, nan, nan, nan, nan, nan, worse, better,
    )  # fmt: skip
    diffs = [a - b for a, b in zip(new_vals, base_vals, strict=True)]
    return _Bootstrap(placeholder, diffs, [t[0][0] for t in triples])


def _adjust_and_judge(comparison: Comparison, family_size: int | None) -> None:
    metrics = [m for c in comparison.cells for m in c.metrics.values()]
    p_values = [m.p_value for m in metrics]
    padding = max(0, (family_size or 0) - len(p_values))
    adjusted = holm(p_values + [1.0] * padding)
    for m, p_adj in zip(metrics, adjusted, strict=False):
        m.p_adjusted = p_adj
        m.verdict = _verdict(m, comparison.alpha, comparison.margin)
        m.warning = _warning(m, comparison.margin)


def _verdict(m: MetricComparison, alpha: float, margin: float) -> str:
    if is_regression(m, alpha, margin):
        return "regressed"
    if m.p_adjusted < alpha and m.difference > 0 and m.ci_low > margin:
        return "improved"
    # no paired score differs at all: unchanged whatever the margin
    identical = (m.worse == 0 and m.better == 0) or m.ci_low == m.ci_high == m.difference == 0
    if m.p_adjusted >= alpha and (identical or (-margin <= m.ci_low and m.ci_high <= margin)):
        return "unchanged"
    return "inconclusive"


def _warning(m: MetricComparison, margin: float) -> str | None:
    if math.isnan(m.mdd):
        return None
    if margin > 0 and m.mdd > margin:
        needed = rows_needed(m.rows, m.mdd, margin)
        return f"cannot detect a {_points(margin)}-point drop with {m.rows} rows; ~{needed} needed"
    if m.verdict == "inconclusive":
        return (
            f"inconclusive with {m.rows} rows: the minimum detectable difference is "
            f"{_points(m.mdd)} points (80% power, 5% two-sided)"
        )
    return None


def _points(value: float) -> str:
    return f"{value * 100:.3g}"
