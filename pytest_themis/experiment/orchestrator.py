"""The orchestrator: plan → cache lookup → runner → cache store → pipeline → reports + manifest."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.entities import CellSpec, EvaluationRecord, GenerationRecord, GenerationTask
from ..core.hashing import dataset_fingerprint, stable_hash
from ..core.reports import EvaluationReport, ExperimentReport
from ..errors import ConfigurationError
from ..generation.plan import GenerationPlan, PreparedRow
from ..generation.runner import GenerationRunner
from .cache_manager import CacheManager
from .manifest import build_manifest

__all__ = ["ExperimentOrchestrator", "ProgressEvent"]

#: Tasks looked up in the cache per round trip (``StorageBackend.get_many``).
_LOOKUP_BATCH = 512


@dataclass(frozen=True)
class ProgressEvent:
    """A progress snapshot, sent to the ``progress`` callback as records arrive."""

    cell_id: str | None
    done: int
    total: int
    cached: int
    errors: int
    elapsed: float

    @property
    def rate(self) -> float:
        """Finished generations per second so far (cache hits included)."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate, or None before the first result."""
        fresh = self.done - self.cached
        if fresh <= 0 or self.elapsed <= 0:
            return None
        return (self.total - self.done) / (fresh / self.elapsed)


class ExperimentOrchestrator:
    """Binds a plan, a runner, a pipeline and a cache into one reproducible run."""

    def __init__(
        self,
        generation_plan: GenerationPlan,
        generation_runner: GenerationRunner | None = None,
        evaluation_pipeline: Any = None,
        cache_manager: CacheManager | None = None,
        *,
        dataset_info: dict[str, Any] | None = None,
        experiment: str = "experiment",
    ) -> None:
        if evaluation_pipeline is None:
            raise ConfigurationError(
                "ExperimentOrchestrator needs an evaluation_pipeline, e.g. "
                "EvaluationPipeline(extractor=IdentityExtractor(), metrics=[ExactMatch()])"
            )
        self.plan = generation_plan
        self.runner = generation_runner or GenerationRunner()
        self.pipeline = evaluation_pipeline
        self.cache = cache_manager or CacheManager(enable_cache=False)
        self.dataset_info = dict(dataset_info or {})
        self.experiment = experiment

    def run(
        self,
        dataset: Iterable[Any],
        run_id: str | None = None,
        evaluation_batch_size: int = 100,
        *,
        cells: Sequence[CellSpec] | None = None,
        progress: Callable[[ProgressEvent], None] | None = None,
        progress_interval: float = 0.2,
    ) -> ExperimentReport:
        """Generate (or load from cache) and score every task; return the report."""
        if evaluation_batch_size < 1:
            raise ConfigurationError(
                f"evaluation_batch_size must be >= 1, got {evaluation_batch_size}"
            )
        started_wall = time.time()
        started = time.perf_counter()
        rows = self._prepare(dataset)
        chosen = list(cells) if cells is not None else self.plan.cells
        self._check_reference()
        dataset_info = self._dataset_info(rows)
        if run_id is None:
            run_id = "run-" + stable_hash(
                [dataset_info["fingerprint"], self.plan.to_dict(), self.pipeline.fingerprint], 12
            )
        total = self.plan.count_tasks(rows, chosen)
        by_cell: dict[str, list[EvaluationRecord]] = defaultdict(list)
        batch: list[GenerationRecord] = []
        counters = {"done": 0, "cached": 0, "errors": 0}
        cell_id = chosen[0].cell_id if len(chosen) == 1 else None
        last_report = 0.0

        def flush() -> None:
            for evaluated in self.pipeline.evaluate(batch):
                by_cell[evaluated.cell_id].append(evaluated)
            batch.clear()

        def take(records: Iterable[GenerationRecord]) -> None:
            for record in records:
                counters["done"] += 1
                counters["cached"] += record.cached
                counters["errors"] += record.error is not None
                batch.append(record)
                if len(batch) >= evaluation_batch_size:
                    flush()

        def report_progress(force: bool = False) -> None:
            nonlocal last_report
            now = time.perf_counter()
            if progress is not None and (force or now - last_report >= progress_interval):
                last_report = now
                progress(
                    ProgressEvent(
                        cell_id,
                        counters["done"],
                        total,
                        counters["cached"],
                        counters["errors"],
                        now - started,
                    )
                )

        for metric in getattr(self.pipeline, "metrics", ()):
            attach = getattr(metric, "attach", None)
            if callable(attach):  # e.g. an LLM judge asks through this run's runner and cache
                attach(runner=self.runner, cache=self.cache)
        # Split hits from misses first, in batches, before any request: the runner gets misses
        # only, and a fully cached run creates no provider and starts no worker.
        hits: list[GenerationRecord] = []
        misses: list[GenerationTask] = []
        for found, fresh in self._partition(rows, chosen):
            hits.extend(found)
            misses.extend(fresh)
        prepare = getattr(self.pipeline, "prepare", None)
        if callable(prepare) and total:
            prepare()  # e.g. scoring workers start while the first requests are in flight
        for finished in self.runner.run_batches(misses) if misses else ():
            # Persist first: a finished generation is durable before anything else happens.
            self.cache.store_many(finished)
            take(finished)
            # Hits are scored while the first requests are in flight, not before them.
            take(hits)
            hits.clear()
            report_progress()
        take(hits)
        flush()
        report_progress(force=True)
        duration = time.perf_counter() - started
        return self._report(run_id, rows, chosen, by_cell, dataset_info, started_wall, duration)

    # -- steps --------------------------------------------------------------------------------

    def _prepare(self, dataset: Iterable[Any]) -> list[PreparedRow]:
        if isinstance(dataset, list) and dataset and isinstance(dataset[0], PreparedRow):
            return dataset
        return self.plan.prepare(dataset)

    def _check_reference(self) -> None:
        if self.plan.reference_field is None and getattr(
            self.pipeline, "requires_reference", False
        ):
            names = ", ".join(self.pipeline.metric_names)
            raise ConfigurationError(
                f"metrics {names} compare against a reference, but no reference_field is set; "
                "pass reference_field='<field with the gold answer>'"
            )

    def _dataset_info(self, rows: list[PreparedRow]) -> dict[str, Any]:
        info = {"name": "custom", "source": "in-memory", "revision": None, **self.dataset_info}
        info["rows"] = len(rows)
        if not info.get("fingerprint"):
            info["fingerprint"] = dataset_fingerprint(r.row for r in rows)
        return info

    def _partition(
        self, rows: list[PreparedRow], cells: list[CellSpec]
    ) -> Iterator[tuple[list[GenerationRecord], list[GenerationTask]]]:
        """The plan's tasks in batches, each split into cache hits and tasks to send.

        In replay mode a miss becomes an error record instead of a task.
        """
        cache = self.cache
        source = self.plan.iter_tasks(rows, cells)
        while chunk := list(itertools.islice(source, _LOOKUP_BATCH)):
            hits: list[GenerationRecord] = []
            fresh: list[GenerationTask] = []
            for task, found in zip(chunk, cache.lookup_many(chunk), strict=True):
                if found is not None:
                    hits.append(found)
                elif cache.replay:
                    hits.append(cache.miss_record(task))
                else:
                    fresh.append(task)
            yield hits, fresh

    def _report(
        self,
        run_id: str,
        rows: list[PreparedRow],
        cells: list[CellSpec],
        by_cell: dict[str, list[EvaluationRecord]],
        dataset_info: dict[str, Any],
        started_wall: float,
        duration: float,
    ) -> ExperimentReport:
        order = {r.row_id: i for i, r in enumerate(rows)}
        names = self.pipeline.metric_names
        cell_reports: dict[str, EvaluationReport] = {}
        all_records: list[EvaluationRecord] = []
        for cell in cells:
            records = by_cell.get(cell.cell_id, [])
            records.sort(
                key=lambda r: (order[r.generation.task.row_id], r.generation.task.sample_index)
            )
            all_records.extend(records)
            cell_report = EvaluationReport.from_records(
                records, names, cell=cell, duration=duration
            )
            # Completeness: every planned task must have come back as a record.
            missing = self.plan.count_tasks(rows, [cell]) - len(records)
            if missing > 0:
                cell_report = dataclasses.replace(cell_report, incomplete=True, missing=missing)
            cell_reports[cell.cell_id] = cell_report
        if len(cell_reports) == 1:  # one cell: the run's report is that cell's, unlabelled
            overall = dataclasses.replace(next(iter(cell_reports.values())), cell=None)
        else:
            overall = EvaluationReport.from_records(all_records, names, duration=duration)
            missing = sum(r.missing for r in cell_reports.values())
            if missing:
                overall = dataclasses.replace(overall, incomplete=True, missing=missing)
        manifest = build_manifest(
            run_id=run_id,
            experiment=self.experiment,
            plan=self.plan,
            pipeline=self.pipeline,
            dataset_info=dataset_info,
            cell_reports=list(cell_reports.values()),
            runner=self.runner.describe(),
            cache=self.cache.describe(),
            started_at=started_wall,
            finished_at=time.time(),
        )
        self.cache.save_run(run_id, manifest)
        metadata = {
            "run_id": run_id,
            "experiment": self.experiment,
            "dataset": dataset_info,
            "cells": [c.cell_id for c in cells],
            "duration_s": duration,
        }
        return ExperimentReport(
            run_id=run_id,
            records=all_records,
            evaluation_report=overall,
            cells=cell_reports,
            metadata=metadata,
            manifest=manifest,
        )
