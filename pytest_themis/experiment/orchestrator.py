"""The orchestrator: plan → cache lookup → runner → cache store → pipeline → reports + manifest."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.entities import CellSpec, EvaluationRecord, GenerationRecord, GenerationTask
from ..core.hashing import dataset_fingerprint, stable_hash
from ..core.protocols import EvaluationPipelineProtocol, missing_pipeline_members
from ..core.reports import EvaluationReport, ExperimentReport
from ..core.setup_clock import setup_seconds
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
        evaluation_pipeline: EvaluationPipelineProtocol | None = None,
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
        missing = missing_pipeline_members(evaluation_pipeline)
        if missing:
            raise ConfigurationError(
                f"evaluation_pipeline {type(evaluation_pipeline).__name__} lacks "
                f"{', '.join(missing)}; implement EvaluationPipelineProtocol "
                "(pytest_themis.core.protocols), e.g. by subclassing EvaluationPipeline"
            )
        self.plan = generation_plan
        self.runner = generation_runner or GenerationRunner()
        self.pipeline: EvaluationPipelineProtocol = evaluation_pipeline
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
        finish: Callable[[ExperimentReport], None] | None = None,
    ) -> ExperimentReport:
        """Generate (or load from cache) and score every task; return the report.

        ``finish(report)`` may complete ``report.manifest`` (samples, comparison) before the
        run's manifest is saved in the store, so it is saved once, in its final form.
        """
        if evaluation_batch_size < 1:
            raise ConfigurationError(
                f"evaluation_batch_size must be >= 1, got {evaluation_batch_size}"
            )
        started_wall = time.time()
        started = time.perf_counter()
        setup_before = setup_seconds()  # provider imports during the run are not its time
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

        self.pipeline.attach(runner=self.runner, cache=self.cache)  # e.g. an LLM judge
        # Hits are split from misses in batches by a lookup thread, off the request path: the
        # runner gets misses only, its first ones as soon as the first batch is looked up.
        hits: deque[GenerationRecord] = deque()
        lookups = _Lookahead(self._partition(rows, chosen, hits))
        try:
            first = next((b for b in lookups if b), [])  # fully cached: no provider, no worker
            if total:
                self.pipeline.prepare()  # e.g. scoring workers start while requests are in flight
            misses = itertools.chain(first, itertools.chain.from_iterable(lookups))
            for finished in self.runner.run_batches(misses) if first else ():
                # Persist first: a finished generation is durable before anything else happens.
                self.cache.store_many(finished)
                take(finished)
                take(_drain(hits))  # hits are scored while requests are in flight
                report_progress()
            for _ in lookups:  # a runner that stopped early (budget): the later hits still count
                pass
        finally:
            lookups.close()
        take(_drain(hits))
        flush()
        report_progress(force=True)
        duration = max(0.0, time.perf_counter() - started - (setup_seconds() - setup_before))
        report = self._report(run_id, rows, chosen, by_cell, dataset_info, started_wall, duration)
        if finish is not None:
            finish(report)
        self.cache.save_run(run_id, report.manifest)
        return report

    # -- steps --------------------------------------------------------------------------------

    def _prepare(self, dataset: Iterable[Any]) -> list[PreparedRow]:
        if isinstance(dataset, list) and dataset and isinstance(dataset[0], PreparedRow):
            return dataset
        return self.plan.prepare(dataset)

    def _check_reference(self) -> None:
        if self.plan.reference_field is None and self.pipeline.requires_reference:
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
        self, rows: list[PreparedRow], cells: list[CellSpec], hits: deque[GenerationRecord]
    ) -> Iterator[list[GenerationTask]]:
        """The plan's tasks, one lookup batch at a time: hits go to ``hits``, misses are yielded.

        In replay mode a miss becomes an error record (a hit) instead of a task.
        """
        cache = self.cache
        source = self.plan.iter_tasks(rows, cells)
        while chunk := list(itertools.islice(source, _LOOKUP_BATCH)):
            fresh: list[GenerationTask] = []
            for task, found in zip(chunk, cache.lookup_many(chunk), strict=True):
                if found is not None:
                    hits.append(found)
                elif cache.replay:
                    hits.append(cache.miss_record(task))
                else:
                    fresh.append(task)
            yield fresh

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


_END = object()


class _Lookahead(Iterator[list[GenerationTask]]):
    """``batches``, produced up to ``depth`` ahead by a background thread.

    The cache lookups run there, not on the thread that sends requests; an error in them is
    raised by ``next``. :meth:`close` (safe from any thread) stops the thread at its next batch.
    """

    def __init__(self, batches: Iterator[list[GenerationTask]], depth: int = 2) -> None:
        self._batches = batches
        self._out: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._work, name="themis-cache-lookup", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for batch in self._batches:
                if not self._put(batch):
                    return
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consuming thread
            self._put(exc)

    def __next__(self) -> list[GenerationTask]:
        if self._done:
            raise StopIteration
        item = self._out.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if item is _END:
            self._done = True
            raise StopIteration
        batch: list[GenerationTask] = item
        return batch

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        if not self._done:
            with contextlib.suppress(queue.Full):
                self._out.put_nowait(_END)  # wakes a consumer waiting in another thread


def _drain(items: deque[GenerationRecord]) -> Iterator[GenerationRecord]:
    """Pop ``items`` from the left until it is empty (it may grow from another thread)."""
    while items:
        yield items.popleft()
