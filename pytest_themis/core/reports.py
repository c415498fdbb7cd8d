"""Report objects: one :class:`EvaluationReport` per cell, one :class:`ExperimentReport` per run."""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .entities import (
    CellSpec,
    EvaluationRecord,
    MetricAggregate,
    MetricMap,
    TokenUsage,
)
from .statistics import aggregate

if TYPE_CHECKING:  # pragma: no cover
    from ..comparison.results import Comparison

__all__ = ["EvaluationReport", "ExperimentReport", "GATE_OPERATORS"]

GATE_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}


@dataclass
class EvaluationReport:
    """Scores of one cell (or of a whole run when ``cell`` is None)."""

    metrics: MetricMap
    records: list[EvaluationRecord] = field(repr=False)
    cell: CellSpec | None = None
    total: int = 0
    errors: int = 0
    extraction_failures: int = 0
    cached: int = 0
    generated: int = 0
    usage: TokenUsage = field(default_factory=TokenUsage)
    cost: float = 0.0
    duration: float = 0.0
    incomplete: bool = False
    #: Planned generations that produced no record at all (a lost worker); > 0 means incomplete.
    missing: int = 0
    #: The run this report belongs to (set by :class:`ExperimentReport`); used by :meth:`compare`.
    run: ExperimentReport | None = field(default=None, repr=False, compare=False)
    #: Samples a metric could not score (judge failures), summed over metrics; never scores.
    metric_errors: int = 0
    #: What scoring itself spent (an LLM judge's calls): ``{"tokens": …, "cost_usd": …}``.
    scoring_usage: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_records(
        cls,
        records: Iterable[EvaluationRecord],
        metric_names: Iterable[str],
        cell: CellSpec | None = None,
        duration: float = 0.0,
    ) -> EvaluationReport:
        records = list(records)
        names = list(metric_names)
        values: dict[str, list[float]] = {n: [] for n in names}
        ids: dict[str, list[str]] = {n: [] for n in names}
        usage = TokenUsage()
        cost = 0.0
        errors = extraction_failures = cached = metric_errors = 0
        scoring_usage: dict[str, float] = {}
        for rec in records:
            gen = rec.generation
            if gen.cached:
                cached += 1
            if gen.usage is not None:
                usage = usage + gen.usage
            if gen.cost:
                cost += gen.cost
            if gen.error is not None:
                errors += 1
                continue
            if rec.extraction_error is not None:
                extraction_failures += 1
            metric_errors += len(rec.metric_errors)
            for scored in rec.scores.values():
                _add_scoring_usage(scoring_usage, scored.details)
            sample_id = _sample_id(rec)
            for name in names:
                score = rec.scores.get(name)
                if score is not None and not math.isnan(score.value):
                    values[name].append(score.value)
                    ids[name].append(sample_id)
        metrics = MetricMap({n: aggregate(n, values[n], ids[n]) for n in names})
        if any(r.generation.task.sample_index for r in records):
            from ..comparison.epochs import epoch_metrics  # several epochs per row

            metrics.update(epoch_metrics(records, names))
        incomplete = any(
            r.generation.error is not None and r.generation.error.kind == "budget" for r in records
        )
        return cls(
            metrics=metrics,
            records=records,
            cell=cell,
            total=len(records),
            errors=errors,
            extraction_failures=extraction_failures,
            cached=cached,
            generated=len(records) - cached - errors,
            usage=usage,
            cost=cost,
            duration=duration,
            incomplete=incomplete,
            metric_errors=metric_errors,
            scoring_usage=scoring_usage,
        )

    @property
    def cell_id(self) -> str:
        return self.cell.cell_id if self.cell is not None else "all"

    @property
    def failures(self) -> list[EvaluationRecord]:
        """Records whose generation failed (provider errors, cache misses, budget)."""
        return [r for r in self.records if r.generation.error is not None]

    def metric(self, name: str) -> MetricAggregate:
        return self.metrics[name]

    def failing_samples(self, name: str, limit: int | None = 5) -> list[str]:
        """Ids of scored samples whose value for ``name`` is below 1 (worst first)."""
        agg = self.metrics[name]
        pairs = sorted(zip(agg.values, agg.sample_ids, strict=True), key=lambda p: p[0])
        failing = [sid for value, sid in pairs if value < 1.0]
        return failing if limit is None else failing[:limit]

    def assert_metric(self, name: str, op: str, threshold: float, *, gate: str = "point") -> None:
        """Fail with a readable message unless ``metric <op> threshold`` holds.

        ``gate="lower"`` compares the lower end of the 95% CI instead of the mean (for ``>=``/``>``)
        or the upper end (for ``<=``/``<``).
        """
        __tracebackhide__ = True
        if op not in GATE_OPERATORS:
            raise ValueError(f"unknown operator {op!r}; use one of {', '.join(GATE_OPERATORS)}")
        if gate not in ("point", "lower"):
            raise ValueError(f"unknown gate {gate!r}; use 'point' or 'lower'")
        agg = self.metrics[name]
        value = self.gate_value(name, op, gate)
        if agg.count and not math.isnan(value) and GATE_OPERATORS[op](value, threshold):
            return
        raise AssertionError(self.describe_gate_failure(name, op, threshold, gate))

    def gate_value(self, name: str, op: str, gate: str) -> float:
        """The number a gate compares: the mean, or (``gate="lower"``) the CI end facing ``op``."""
        agg = self.metrics[name]
        if gate == "lower":
            return agg.ci_low if op in (">=", ">") else agg.ci_high
        return agg.mean

    def describe_gate_failure(self, name: str, op: str, threshold: float, gate: str) -> str:
        agg = self.metrics[name]
        value = self.gate_value(name, op, gate)
        if gate == "point":
            shown = f"mean {_fmt(value)}"
        else:
            end = "lower" if op in (">=", ">") else "upper"
            shown = f"{end} 95% CI bound {_fmt(value)} (mean {_fmt(agg.mean)})"
        lines = [
            f"{self.cell_id}: {agg.name} {shown} "
            f"[95% CI {_fmt(agg.ci_low)}, {_fmt(agg.ci_high)}] n={agg.count} "
            f"is not {op} {threshold:g}",
        ]
        if self.errors:
            lines.append(f"  {self.errors} generation error(s) not scored")
        failing = self.failing_samples(name)
        if failing:
            lines.append(f"  failing samples ({len(self.failing_samples(name, None))} in all):")
            by_id = {_sample_id(r): r for r in self.records}
            for sid in failing:
                rec = by_id.get(sid)
                if rec is None:
                    lines.append(f"    {sid}")
                    continue
                lines.append(
                    f"    {sid}: extracted {_short(rec.prediction)} "
                    f"reference {_short(rec.generation.task.reference)}"
                )
        return "\n".join(lines)

    def compare(self, baseline: Any, **options: Any) -> Comparison:
        """This cell against ``baseline``: :meth:`ExperimentReport.compare`, kept to this cell.

        In a themis test: ``themis_report.compare("base/manifest.json").assert_not_worse(...)``.
        """
        if self.run is None:
            from ..errors import ThemisError

            raise ThemisError(
                "this EvaluationReport is not part of a run; compare the ExperimentReport"
            )
        comparison = self.run.compare(baseline, **options)
        if self.cell is not None:
            comparison.cells = [c for c in comparison.cells if c.cell_id == self.cell.cell_id]
        return comparison

    def summary(self) -> dict[str, Any]:
        return {
            "cell": self.cell.to_dict() if self.cell is not None else None,
            "metrics": {n: a.to_dict() for n, a in self.metrics.items()},
            "counts": {
                "total": self.total,
                "cached": self.cached,
                "generated": self.generated,
                "errors": self.errors,
                "extraction_failures": self.extraction_failures,
            },
            "usage": self.usage.to_dict(),
            "cost_usd": round(self.cost, 8),
            "incomplete": self.incomplete,
            "missing": self.missing,
            "metric_errors": self.metric_errors,
            "scoring_usage": dict(self.scoring_usage),
        }


@dataclass
class ExperimentReport:
    """Everything a run produced: all records, per-cell reports and the manifest."""

    run_id: str
    records: list[EvaluationRecord] = field(repr=False)
    evaluation_report: EvaluationReport = field(repr=False)
    cells: dict[str, EvaluationReport] = field(default_factory=dict, repr=False)
    metadata: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)
    #: Set by ``evaluate(..., baseline=...)``: this run compared with the baseline.
    comparison: Comparison | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for report in (self.evaluation_report, *self.cells.values()):
            report.run = self

    @property
    def failures(self) -> list[EvaluationRecord]:
        return self.evaluation_report.failures

    def to_jsonl(self, path: str | os.PathLike[str], *, log_prompts: str = "full") -> Path:
        """Write one JSON line per sample (see the README) and reference it in ``manifest``.

        ``log_prompts="hash"`` records a SHA-256 of the prompt instead of its text.
        """
        from ..comparison.baseline import samples_reference
        from ..comparison.samples import rows_digest, sample_rows, template_hashes, write_jsonl

        target = Path(path)
        rows = sample_rows(
            self.records,
            self.run_id,
            templates=template_hashes(self.manifest),
            experiment=self.metadata.get("experiment"),
            log_prompts=log_prompts,
        )
        digest = write_jsonl(rows, target)
        # deferred: core must not import the experiment layer at module level
        from ..experiment.manifest import finalize_manifest

        known = self.manifest.get("samples") or {}  # e.g. the store entry evaluate() recorded
        # evaluate()'s digest of these records stands; without one, the rows' own
        content = known.get("content_sha256") or rows_digest(rows)
        reference = samples_reference(target, target.parent, digest, len(rows), content)
        self.manifest = finalize_manifest(self.manifest, samples={**known, **reference})
        return target

    def to_html(self, path: str | os.PathLike[str]) -> Path:
        """Write a self-contained HTML report of this run (with its comparison, if any)."""
        from ..comparison.samples import sample_rows, template_hashes
        from ..report.html import write_html

        rows = sample_rows(
            self.records,
            self.run_id,
            templates=template_hashes(self.manifest),
            experiment=self.metadata.get("experiment"),
        )
        return write_html(path, self.manifest, rows, comparison=self.comparison)

    def compare(
        self,
        baseline: Any,
        *,
        margin: float = 0.0,
        mapping: Mapping[str, str] | None = None,
        storage: Any = None,
        seed: int = 0,
    ) -> Comparison:
        """Pair this run with ``baseline`` (a report, manifest path, run id or ``latest``).

        Run ids and ``latest`` are looked up in ``storage`` (a store or folder; default the
        ``evaluate`` cache folder). ``mapping`` pairs cells explicitly (new cell id → baseline
        cell id). See :class:`~pytest_themis.comparison.Comparison`.
        """
        from ..comparison.baseline import load_baseline, report_run_data
        from ..comparison.compare import compare_runs

        store, owned = storage, False
        by_id = isinstance(baseline, str) and not Path(baseline).is_file()
        if by_id and (store is None or isinstance(store, (str, os.PathLike))):
            from ..storage import open_storage  # a folder or a postgresql:// / s3:// URL

            store, owned = open_storage(store), True
        try:
            base = load_baseline(baseline, storage=store)
        finally:
            if owned:
                store.close()
        return compare_runs(report_run_data(self), base, margin=margin, mapping=mapping, seed=seed)

    @property
    def metrics(self) -> MetricMap:
        return self.evaluation_report.metrics

    @property
    def incomplete(self) -> bool:
        """Whether some planned generation is missing or was not sent (budget)."""
        return self.evaluation_report.incomplete

    @property
    def missing(self) -> int:
        """Planned generations that produced no record."""
        return self.evaluation_report.missing

    def metric(self, name: str) -> MetricAggregate:
        """Overall aggregate by name; ``exact_match`` and ``ExactMatch`` both work."""
        return self.evaluation_report.metrics[name]


def _sample_id(rec: EvaluationRecord) -> str:
    task = rec.generation.task
    return task.row_id if task.sample_index == 0 else f"{task.row_id}#{task.sample_index}"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(value: float) -> str:
    return "nan" if value is None or math.isnan(value) else f"{value:.3f}"


def _add_scoring_usage(total: dict[str, float], details: dict[str, Any]) -> None:
    """Add a score's judge tokens and cost (fresh calls only: cached ones cost nothing now)."""
    tokens, cost = details.get("judge_tokens"), details.get("judge_cost")
    if tokens is None and cost is None:
        return
    total.setdefault("tokens", 0)
    total.setdefault("cost_usd", 0.0)
    if details.get("judge_cached"):
        return
    total["tokens"] += int(tokens or 0)
    total["cost_usd"] = round(total["cost_usd"] + float(cost or 0.0), 8)
