"""EvaluationPipeline: reasoning stripped → extractor → metrics, for a batch of generations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.entities import EvaluationRecord, GenerationRecord, MetricScore
from ..core.hashing import stable_hash
from ..errors import ConfigurationError, ExtractionError, MetricError, ThemisError
from .extractors import Extractor, IdentityExtractor, strip_reasoning
from .metrics.base import Metric, MetricItemError, coerce_score

__all__ = ["EvaluationPipeline"]

_SCHEMA_VERSION = 1


class EvaluationPipeline:
    """Scores generations: strips ``<think>`` blocks, extracts the answer, runs every metric.

    ``extractor`` defaults to :class:`IdentityExtractor`. ``metrics`` must not be empty; registry
    names (``"exact_match"``) are accepted in place of instances. Records whose generation failed
    get no scores; responses without an extractable answer score 0 on every metric that reads
    the prediction (metrics with ``uses_raw_text`` still score the raw response).
    """

    def __init__(
        self,
        extractor: Extractor | str | None = None,
        metrics: Sequence[Metric | str] = (),
    ) -> None:
        from .registry import get_extractor, get_metric

        if isinstance(metrics, (Metric, str)):
            metrics = [metrics]
        if not metrics:
            raise ConfigurationError(
                "EvaluationPipeline needs at least one metric, e.g. metrics=[ExactMatch()]"
            )
        self.extractor: Extractor = (
            IdentityExtractor() if extractor is None else get_extractor(extractor)
        )
        self.metrics: list[Metric] = [get_metric(m) for m in metrics]
        names = [m.name for m in self.metrics]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigurationError(
                f"EvaluationPipeline has several metrics named {', '.join(dupes)}; scores are "
                "keyed by name, so give each metric a distinct name"
            )

    # -- description -------------------------------------------------------------------------

    @property
    def metric_names(self) -> list[str]:
        return [m.name for m in self.metrics]

    @property
    def requires_reference(self) -> bool:
        return any(m.requires_reference for m in self.metrics)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": _SCHEMA_VERSION,
            "extractor": self.extractor.to_dict(),
            "metrics": [m.to_dict() for m in self.metrics],
        }

    @property
    def fingerprint(self) -> str:
        """Stable hash of :meth:`to_dict`: changes whenever scoring could change."""
        return stable_hash(self.to_dict())

    def __repr__(self) -> str:
        return f"EvaluationPipeline(extractor={self.extractor!r}, metrics={self.metrics!r})"

    # -- scoring -----------------------------------------------------------------------------

    def evaluate(self, records: Sequence[GenerationRecord]) -> list[EvaluationRecord]:
        """One :class:`EvaluationRecord` per input record, in order."""
        results = [EvaluationRecord(generation=rec) for rec in records]
        scorable = [i for i, rec in enumerate(records) if rec.error is None]
        for i in scorable:
            self._extract(results[i])
        for metric in self.metrics:
            self._score(metric, results, scorable)
        return results

    def _extract(self, result: EvaluationRecord) -> None:
        text = result.generation.text or ""
        try:
            result.prediction = self.extractor.extract(strip_reasoning(text))
        except ExtractionError as exc:
            result.extraction_error = str(exc) or type(exc).__name__
        except ThemisError:
            raise
        except Exception as exc:
            raise MetricError(
                f"extractor {self.extractor.name} raised on row {result.row_id!r}: "
                f"{type(exc).__name__}: {exc}; extractors must raise ExtractionError when a "
                "response has no answer"
            ) from exc

    def _score(self, metric: Metric, results: list[EvaluationRecord], scorable: list[int]) -> None:
        if metric.wants_records:
            self._score_records(metric, [results[i] for i in scorable])
            return
        rows: list[int] = []
        items: list[tuple[str, Any]] = []
        for i in scorable:
            result = results[i]
            reference = result.task.reference
            if metric.requires_reference and reference is None:
                raise MetricError(
                    f"metric {metric.name} needs a reference but row {result.row_id!r} has none; "
                    "set reference_field to the dataset column holding the gold answer"
                )
            if metric.uses_raw_text:
                items.append((result.generation.text or "", reference))
            elif result.prediction is None:
                result.scores[metric.name] = MetricScore(
                    metric.name, 0.0, {"extraction_failed": True}
                )
                continue
            else:
                items.append((result.prediction, reference))
            rows.append(i)
        if not items:
            return
        try:
            scores = metric.score_batch(items)
        except MetricItemError as exc:
            if 0 <= exc.index < len(rows):
                where = f"row {results[rows[exc.index]].row_id!r}"
            else:
                where = "an unknown row"
            raise _metric_error(metric, where, exc.error) from exc.error
        except ThemisError:
            raise
        except Exception as exc:
            ids = ", ".join(repr(results[i].row_id) for i in rows[:5])
            more = f" (+{len(rows) - 5} more)" if len(rows) > 5 else ""
            where = f"row {ids}" if len(rows) == 1 else f"one of rows {ids}{more}"
            raise _metric_error(metric, where, exc) from exc
        if len(scores) != len(items):
            raise MetricError(
                f"metric {metric.name} returned {len(scores)} scores for {len(items)} items; "
                "score_batch must return one score per item, in order"
            )
        for i, score in zip(rows, scores, strict=True):
            try:
                results[i].scores[metric.name] = coerce_score(metric.name, score)
            except (TypeError, ValueError) as exc:
                raise _metric_error(metric, f"row {results[i].row_id!r}", exc) from exc

    @staticmethod
    def _score_records(metric: Any, records: list[EvaluationRecord]) -> None:
        """Metrics that read whole records (an LLM judge): a score or a metric error each."""
        if not records:
            return
        outcomes = metric.score_records(records)
        if len(outcomes) != len(records):
            raise MetricError(
                f"metric {metric.name} returned {len(outcomes)} results for {len(records)} "
                "records; score_records must return one per record, in order"
            )
        for record, outcome in zip(records, outcomes, strict=True):
            if isinstance(outcome, MetricScore):
                record.scores[metric.name] = coerce_score(metric.name, outcome)
            else:
                record.metric_errors[metric.name] = str(getattr(outcome, "message", outcome))

    # -- lifecycle ---------------------------------------------------------------------------

    def attach(self, *, runner: Any = None, cache: Any = None) -> None:
        """Hand the run's runner and cache to the metrics (called before anything is scored)."""
        for metric in self.metrics:
            metric.attach(runner=runner, cache=cache)

    def prepare(self) -> None:
        """Let metrics start slow resources (worker processes) while generation runs."""
        for metric in self.metrics:
            metric.prepare()

    def close(self) -> None:
        """Release metric resources (e.g. math-verify worker processes)."""
        for metric in self.metrics:
            metric.close()

    def __enter__(self) -> EvaluationPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _metric_error(metric: Metric, where: str, exc: BaseException) -> MetricError:
    return MetricError(f"metric {metric.name} failed on {where}: {type(exc).__name__}: {exc}")
