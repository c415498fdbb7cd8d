"""The dispatcher every cluster engine shares: batches out, records back, lost work resubmitted.

An engine (Ray, Dask) only provides an :class:`EngineAdapter`: start workers, submit a batch,
wait for some, fetch a result. :class:`RemoteExecutionBackend` keeps the rules: the
``max_parallel`` window holds across the cluster (tasks in submitted batches never exceed it;
``"auto"`` is one AIMD window fed by the workers' 429 counts), batches are small so every worker
has about two in flight, records are yielded as batches finish, a batch whose worker died is
resubmitted (each task yields exactly one record), and the budget is checked before each
submission (tasks not sent become budget records). A run stopped early (its record stream
closed, Ctrl-C) cancels its batches on the workers, so they send no more of its requests.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.defaults import AUTO_PARALLEL_CEILING
from ..core.entities import GenerationRecord, GenerationTask
from ..generation.executors import TaskExecutor
from ..generation.kernel import GenerationKernel
from ..generation.retry import AimdWindow
from ..generation.router import default_executor
from ..generation.settings import BatchResult, Cancellation, RunSettings
from .execution import ExecutionBackend, ExecutionJob

__all__ = [
    "EngineAdapter",
    "RemoteExecutionBackend",
    "WorkerJob",
    "WorkerLost",
    "cancel_run",
    "run_task_batch",
]

#: Runs a worker process remembers (kernel and cancellation of each recent job).
_KEPT_RUNS = 4


@dataclass(frozen=True)
class WorkerJob:
    """Everything a remote worker needs to build its kernel; picklable.

    ``executor`` None means the default executor for ``settings.client``
    (:func:`~pytest_themis.generation.router.default_executor`), built in the worker (which then
    imports its own provider libraries, once).
    """

    job_id: str
    executor: TaskExecutor | None
    settings: RunSettings


class _WorkerRun:
    """One run as a worker process sees it: its kernel (built on its first batch) and the
    cancellation the driver triggers when it stops reading the run's records."""

    def __init__(self) -> None:
        self.kernel: GenerationKernel | None = None
        self.cancellation = Cancellation()


_RUNS: OrderedDict[str, _WorkerRun] = OrderedDict()
_RUNS_LOCK = threading.Lock()


def _run_for(job_id: str) -> _WorkerRun:
    with _RUNS_LOCK:
        run = _RUNS.get(job_id)
        if run is None:
            run = _RUNS[job_id] = _WorkerRun()
            while len(_RUNS) > _KEPT_RUNS:
                _RUNS.popitem(last=False)
        else:
            _RUNS.move_to_end(job_id)
        return run


def run_task_batch(job: WorkerJob, batch: list[GenerationTask]) -> BatchResult:
    """Worker side: get-or-create this process's kernel for ``job.job_id``, run the batch
    (nothing, once the run is cancelled)."""
    run = _run_for(job.job_id)
    with _RUNS_LOCK:
        if run.kernel is None:
            executor = job.executor
            if executor is None:
                executor = default_executor(job.settings.client)
            run.kernel = GenerationKernel(executor, job.settings)
        kernel = run.kernel
    return kernel.run_batch(batch, cancellation=run.cancellation)


def cancel_run(job_id: str) -> None:
    """Worker side: cancel the run's batches in this process, running and still to come."""
    _run_for(job_id).cancellation.cancel()


class WorkerLost(Exception):
    """A batch's worker died; the batch must be resubmitted."""


class EngineAdapter(Protocol):
    """What an engine (Ray, Dask) provides to :class:`RemoteExecutionBackend`."""

    def start(self) -> int:
        """Connect/create workers; return the number of workers."""
        ...

    def submit(self, job: WorkerJob, batch: list[GenerationTask]) -> Any:
        """Start ``run_task_batch(job, batch)`` on a worker; return a handle."""
        ...

    def wait_any(self, handles: Sequence[Any], timeout: float | None) -> list[Any]:
        """The handles among ``handles`` that have finished (at least one unless timed out)."""
        ...

    def result(self, handle: Any) -> BatchResult:
        """The finished batch's result; raises :class:`WorkerLost` if its worker died."""
        ...

    def cancel(self, job_id: str, handles: Sequence[Any]) -> None:
        """The driver stopped reading: drop ``handles`` and have every worker
        :func:`cancel_run` ``job_id``, so no more of its requests are sent."""
        ...

    def shutdown(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...


class _Source:
    """The task iterator, remembering when it ran out."""

    def __init__(self, tasks: Iterable[GenerationTask]) -> None:
        self._tasks = iter(tasks)
        self.exhausted = False

    def __iter__(self) -> Iterator[GenerationTask]:
        return self

    def __next__(self) -> GenerationTask:
        try:
            return next(self._tasks)
        except StopIteration:
            self.exhausted = True
            raise


class _Window:
    """The cluster-wide cap on tasks in submitted batches: fixed, or AIMD for ``"auto"``."""

    def __init__(self, settings: RunSettings) -> None:
        self.fixed = settings.fixed_limit
        self.aimd = AimdWindow(maximum=AUTO_PARALLEL_CEILING) if self.fixed is None else None

    @property
    def limit(self) -> int:
        if self.aimd is not None:
            return max(1, int(self.aimd.limit))
        assert self.fixed is not None
        return self.fixed

    def feed(self, result: BatchResult, in_flight: int) -> None:
        if self.aimd is None:
            return
        if result.rate_limited:
            self.aimd.on_rate_limit(in_flight)
        for record in result.records:
            if record.error is None:
                self.aimd.on_success()


def _light(task: GenerationTask) -> GenerationTask:
    """The task without its dataset row and reference (a worker only needs the request)."""
    return GenerationTask(task.cell, task.row_id, task.sample_index, task.messages)


def _reattach(
    batch: list[GenerationTask], records: list[GenerationRecord]
) -> list[GenerationRecord]:
    """The worker's records with this process's own tasks (row, reference, cache key)."""
    originals: dict[str, list[GenerationTask]] = {}
    for task in batch:
        originals.setdefault(task.task_id, []).append(task)
    out = []
    for record in records:
        candidates = originals.get(record.task.task_id)
        if candidates:
            record = dataclasses.replace(record, task=candidates.pop())
        out.append(record)
    return out


class RemoteExecutionBackend(ExecutionBackend):
    """Runs batches of tasks on an engine's long-lived workers (see the module docstring).

    ``batch_size`` None sizes batches so each worker has about two in flight.
    """

    def __init__(self, adapter: EngineAdapter, batch_size: int | None = None) -> None:
        if batch_size is not None and batch_size < 1:
            from ..errors import ConfigurationError

            raise ConfigurationError(f"batch_size must be >= 1, got {batch_size}")
        self.adapter = adapter
        self.batch_size = batch_size
        self.workers = 0
        #: Batches resubmitted because their worker was lost (over this backend's life).
        self.resubmitted = 0

    def open(self) -> None:
        if not self.workers:
            self.workers = max(1, self.adapter.start())

    def run(self, job: ExecutionJob) -> Iterator[list[GenerationRecord]]:
        self.open()
        worker_job = WorkerJob(uuid.uuid4().hex, job.executor, job.settings)
        window = _Window(job.settings)
        source = _Source(job.tasks)
        requeued: deque[list[GenerationTask]] = deque()
        in_flight: dict[Any, list[GenerationTask]] = {}
        try:
            while True:
                refused = self._submit(worker_job, in_flight, requeued, source, window, job)
                if refused:
                    yield refused
                if not in_flight:
                    if source.exhausted and not requeued:
                        return
                    continue
                yield from self._collect(in_flight, requeued, window, job)
        finally:
            if in_flight:  # stopped early (closed stream, Ctrl-C, error): stop the workers too
                self._cancel(worker_job.job_id, list(in_flight))

    def _submit(
        self,
        worker_job: WorkerJob,
        in_flight: dict[Any, list[GenerationTask]],
        requeued: deque[list[GenerationTask]],
        source: _Source,
        window: _Window,
        job: ExecutionJob,
    ) -> list[GenerationRecord]:
        """Submit batches while the window has room; return the budget records of tasks
        refused because the budget is spent."""
        refused: list[GenerationRecord] = []
        sent = sum(len(b) for b in in_flight.values())
        while True:
            room = window.limit - sent
            batch = self._next_batch(requeued, source, room, window.limit, job, len(in_flight))
            if batch is None:
                return refused
            if job.budget.exhausted:
                refused.extend(job.budget.record(t) for t in batch)
                continue
            in_flight[self.adapter.submit(worker_job, [_light(t) for t in batch])] = batch
            sent += len(batch)

    def _cancel(self, job_id: str, handles: list[Any]) -> None:
        try:
            self.adapter.cancel(job_id, handles)
        except Exception:  # noqa: BLE001, S110 - best effort; the run's own error matters more
            pass

    def _next_batch(
        self,
        requeued: deque[list[GenerationTask]],
        source: Iterator[GenerationTask],
        room: int,
        limit: int,
        job: ExecutionJob,
        out: int,
    ) -> list[GenerationTask] | None:
        """The next batch that fits in ``room`` (a resubmitted one first), or None.

        While every worker has a batch, a batch is sent only at full size: refilling each freed
        slot at once would split the window into ever smaller batches.
        """
        if requeued:
            # A resubmitted batch goes out whole once it fits (or nothing else is out).
            if len(requeued[0]) <= room or not out:
                return requeued.popleft()
            return None
        target = self.batch_size or self._auto_size(limit, job)
        if room <= 0 or (room < target and out >= self.workers):
            return None
        batch = [task for _, task in zip(range(min(room, target)), source, strict=False)]
        return batch or None

    def _auto_size(self, limit: int, job: ExecutionJob) -> int:
        return max(1, min(job.max_batch, math.ceil(limit / (2 * self.workers))))

    def _collect(
        self,
        in_flight: dict[Any, list[GenerationTask]],
        requeued: deque[list[GenerationTask]],
        window: _Window,
        job: ExecutionJob,
    ) -> Iterator[list[GenerationRecord]]:
        for handle in self.adapter.wait_any(list(in_flight), None):
            batch = in_flight.pop(handle)
            try:
                result = self.adapter.result(handle)
            except WorkerLost:
                self.resubmitted += 1
                requeued.append(batch)
                continue
            records = _reattach(batch, result.records)
            for record in records:
                job.budget.charge(record.cost)
            window.feed(result, sum(len(b) for b in in_flight.values()) + len(batch))
            if records:
                yield records

    def shutdown(self) -> None:
        self.adapter.shutdown()
        self.workers = 0

    def describe(self) -> dict[str, object]:
        return {
            "name": type(self).__name__,
            "batch_size": self.batch_size,
            **self.adapter.describe(),
        }
