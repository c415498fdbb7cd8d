"""Scoring on a cluster engine: batches of generations scored on Ray actors or Dask workers.

:class:`RemoteScorer` ships the pipeline to the cluster once (``ray.put`` / ``client.scatter``),
sends batches of records (without their model's options: keys and python model functions stay
here) with a bounded window (about two batches per worker), and hands the scored batches back as
they finish. A batch whose worker died is resubmitted, so each record
comes back exactly once. Each worker process keeps one copy of the pipeline per run
(:func:`score_batch`), so a metric's worker processes (math-verify's pool) start once and serve
every batch; :meth:`RemoteScorer.close` closes them on every worker. A metric that fails the
whole batch raises the same error on the driver as local scoring would.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.entities import CellSpec, EvaluationRecord, GenerationRecord
from ..errors import ConfigurationError
from ._remote import WorkerLost
from .scoring import Scorer

__all__ = ["RemoteScorer", "ScoredBatch", "ScoringEngine", "close_job", "score_batch"]

#: Records per batch at most when the batch size is automatic.
MAX_AUTO_BATCH = 64
#: Pipelines a worker process keeps (one per recent run).
_KEPT_PIPELINES = 4


class ScoringEngine(Protocol):
    """What an engine adapter provides for scoring (besides ``wait_any`` and ``result``)."""

    def ship(self, obj: Any) -> Any:
        """Put ``obj`` on the cluster once; the handle, passed to a call, arrives as ``obj``."""
        ...

    def release(self, shipped: Any) -> None:
        """Drop what :meth:`ship` put on the cluster."""
        ...

    def submit_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Start ``fn(*args)`` on a worker; return a handle for ``wait_any`` / ``result``."""
        ...

    def wait_any(self, handles: Sequence[Any], timeout: float | None) -> list[Any]: ...

    def result(self, handle: Any) -> Any:
        """The call's return value; raises :class:`WorkerLost` if its worker died."""
        ...

    def run_everywhere(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` once in every worker process (errors ignored)."""
        ...


@dataclass
class ScoredBatch:
    """A worker's answer: the scored records, or the error that failed the batch."""

    records: list[EvaluationRecord] | None
    error: BaseException | None = None


# ------------------------------------------------------------------------------ worker side

_PIPELINES: OrderedDict[str, Any] = OrderedDict()
_PIPELINES_LOCK = threading.Lock()


def _pipeline_for(job_id: str, pipeline: Any) -> Any:
    """This process's pipeline of run ``job_id`` (the first copy received is kept)."""
    evicted = None
    with _PIPELINES_LOCK:
        kept = _PIPELINES.get(job_id)
        if kept is None:
            kept = _PIPELINES[job_id] = pipeline
            if len(_PIPELINES) > _KEPT_PIPELINES:
                evicted = _PIPELINES.popitem(last=False)[1]
        else:
            _PIPELINES.move_to_end(job_id)
    if evicted is not None:
        evicted.close()
    return kept


def score_batch(job_id: str, pipeline: Any, records: list[GenerationRecord]) -> ScoredBatch:
    """Worker side: score ``records`` with this process's copy of the run's pipeline."""
    try:
        return ScoredBatch(_pipeline_for(job_id, pipeline).evaluate(records))
    except Exception as exc:  # noqa: BLE001 - re-raised on the driver, as local scoring would
        return ScoredBatch(None, exc)


def close_job(job_id: str) -> None:
    """Worker side: close and forget run ``job_id``'s pipeline (its worker processes stop)."""
    with _PIPELINES_LOCK:
        pipeline = _PIPELINES.pop(job_id, None)
    if pipeline is not None:
        pipeline.close()


# ------------------------------------------------------------------------------ driver side


class RemoteScorer(Scorer):
    """Scores batches of records on ``engine``'s ``workers`` (see the module docstring)."""

    def __init__(self, engine: ScoringEngine, workers: int, pipeline: Any) -> None:
        self.engine = engine
        self.workers = max(1, workers)
        self.job_id = uuid.uuid4().hex
        #: Batches resubmitted because their worker was lost.
        self.resubmitted = 0
        try:
            self._shipped = engine.ship(pipeline)
        except Exception as exc:  # noqa: BLE001 - pickling errors come in many types
            raise ConfigurationError(
                f"the scoring pipeline cannot be sent to the engine ({type(exc).__name__}: "
                f"{exc}); make its metrics picklable or turn score_on_engine off"
            ) from None
        self._closed = False

    def score(
        self, records: Sequence[GenerationRecord], batch_size: int | None = None
    ) -> Iterator[list[EvaluationRecord]]:
        if not records:
            return
        size = batch_size or max(
            1, min(MAX_AUTO_BATCH, math.ceil(len(records) / (2 * self.workers)))
        )
        todo = deque(list(records[i : i + size]) for i in range(0, len(records), size))
        in_flight: dict[Any, list[GenerationRecord]] = {}
        cells: dict[int, CellSpec] = {}
        try:
            while todo or in_flight:
                while todo and len(in_flight) < 2 * self.workers:
                    batch = todo.popleft()
                    light = [_light(record, cells) for record in batch]
                    handle = self.engine.submit_call(score_batch, self.job_id, self._shipped, light)
                    in_flight[handle] = batch
                for handle in self.engine.wait_any(list(in_flight), None):
                    batch = in_flight.pop(handle)
                    try:
                        answer: ScoredBatch = self.engine.result(handle)
                    except WorkerLost:
                        self.resubmitted += 1
                        todo.appendleft(batch)
                        continue
                    if answer.error is not None:
                        raise answer.error
                    assert answer.records is not None
                    yield _reattach(batch, answer.records)
        except Exception:
            self._drain(in_flight)
            raise

    def _drain(self, in_flight: dict[Any, list[GenerationRecord]]) -> None:
        """Collect batches still out after an error, so the engine forgets their handles (an
        interrupt does not wait for them)."""
        while in_flight:
            for handle in self.engine.wait_any(list(in_flight), None):
                in_flight.pop(handle)
                try:
                    self.engine.result(handle)
                except WorkerLost:
                    pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.engine.run_everywhere(close_job, self.job_id)
        shipped, self._shipped = self._shipped, None
        self.engine.release(shipped)


def _light(record: GenerationRecord, cells: dict[int, CellSpec]) -> GenerationRecord:
    """The record without its model's options (provider settings, keys, a python model's
    function): scoring never reads them, and they need not be picklable or leave this process."""
    cell = record.task.cell
    if not cell.model.options:
        return record
    light = cells.get(id(cell))
    if light is None:
        model = dataclasses.replace(cell.model, options={})
        light = cells[id(cell)] = dataclasses.replace(cell, model=model)
    return dataclasses.replace(record, task=dataclasses.replace(record.task, cell=light))


def _reattach(
    batch: list[GenerationRecord], scored: list[EvaluationRecord]
) -> list[EvaluationRecord]:
    """The worker's scored records around this process's own generation records."""
    if len(scored) != len(batch):
        raise RuntimeError(f"a worker scored {len(scored)} of {len(batch)} records")
    return [
        dataclasses.replace(result, generation=original)
        for original, result in zip(batch, scored, strict=True)
    ]
