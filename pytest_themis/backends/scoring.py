"""Scoring on the execution engine: :class:`EngineScoring` sends a pipeline's work to the backend.

``evaluate(..., score_on_engine=True)`` (pytest: ``--themis-score-on-engine``) wraps the run's
pipeline in :class:`EngineScoring`: each batch the orchestrator scores is split into smaller
batches that the backend's :class:`Scorer` runs on its workers (Ray actors, Dask workers), each
metric's per-sample timeout enforced there as it is locally. The wrapper has the wrapped
pipeline's fingerprint and description, so cache keys and manifests do not change.

Metrics that read whole records through the run's runner (an LLM judge, ``wants_records``) stay
in this process: their requests must go through this run's runner, cache and budget.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..core.entities import EvaluationRecord, GenerationRecord
from ..errors import ConfigurationError
from .execution import ExecutionBackend

if TYPE_CHECKING:
    from ..core.protocols import EvaluationPipelineProtocol

__all__ = ["EngineScoring", "LocalScorer", "Scorer", "check_scoring_backend", "scores_remotely"]


class Scorer:
    """Scores records with one pipeline on one backend; :meth:`close` releases what it started."""

    def score(
        self, records: Sequence[GenerationRecord], batch_size: int | None = None
    ) -> Iterator[list[EvaluationRecord]]:
        """Yield every record scored (each exactly once), in lists, in any order."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the scorer's resources (the pipeline's owner closes the pipeline itself)."""


class LocalScorer(Scorer):
    """Scores in this process, ``batch_size`` records at a time (default: all at once)."""

    def __init__(self, pipeline: EvaluationPipelineProtocol) -> None:
        self.pipeline = pipeline

    def score(
        self, records: Sequence[GenerationRecord], batch_size: int | None = None
    ) -> Iterator[list[EvaluationRecord]]:
        size = batch_size or max(1, len(records))
        for start in range(0, len(records), size):
            yield self.pipeline.evaluate(records[start : start + size])


def scores_remotely(backend: ExecutionBackend | None) -> bool:
    """Whether ``backend`` scores on workers of its own (it overrides ``open_scoring``)."""
    return backend is not None and type(backend).open_scoring is not ExecutionBackend.open_scoring


def check_scoring_backend(backend: ExecutionBackend | None, where: str) -> None:
    """Raise the one-line usage error of ``score_on_engine`` without a remote engine."""
    if not scores_remotely(backend):
        name = "the default engine" if backend is None else type(backend).__name__
        raise ConfigurationError(
            f"{where} needs a Ray or Dask execution backend, but the run uses {name}; pass "
            "execution_backend='ray' or 'dask://host:port' (pytest: --themis-backend), or drop it"
        )


def _split(pipeline: Any) -> tuple[Any, Any]:
    """(the part scored on the engine, the part kept here): judges stay here."""
    from ..evaluation.pipeline import EvaluationPipeline

    if not isinstance(pipeline, EvaluationPipeline):
        return pipeline, None
    here = [m for m in pipeline.metrics if m.wants_records]
    if not here:
        return pipeline, None
    there = [m for m in pipeline.metrics if not m.wants_records]
    remote = EvaluationPipeline(pipeline.extractor, there) if there else None
    return remote, EvaluationPipeline(pipeline.extractor, here)


class EngineScoring:
    """``pipeline`` scored on ``backend``'s workers (see the module docstring).

    ``batch_size`` records go to a worker at a time (None: about two batches per worker of each
    batch the orchestrator scores). Implements
    :class:`~pytest_themis.core.protocols.EvaluationPipelineProtocol`; :meth:`close` stops what
    the workers started (the orchestrator's owner calls it after the run).
    """

    def __init__(
        self,
        pipeline: EvaluationPipelineProtocol,
        backend: ExecutionBackend,
        batch_size: int | None = None,
    ) -> None:
        if batch_size is not None and batch_size < 1:
            raise ConfigurationError(f"scoring batch_size must be >= 1, got {batch_size}")
        self.pipeline = pipeline
        self.backend = backend
        self.batch_size = batch_size
        self._remote, self._local = _split(pipeline)
        self._scorer: Scorer | None = None

    # -- the wrapped pipeline's description ----------------------------------------------------

    @property
    def metric_names(self) -> list[str]:
        return self.pipeline.metric_names

    @property
    def fingerprint(self) -> str:
        return self.pipeline.fingerprint

    @property
    def requires_reference(self) -> bool:
        return self.pipeline.requires_reference

    def to_dict(self) -> dict[str, Any]:
        return self.pipeline.to_dict()

    def __repr__(self) -> str:
        return f"EngineScoring({self.pipeline!r}, backend={type(self.backend).__name__})"

    # -- scoring -------------------------------------------------------------------------------

    def attach(self, *, runner: Any = None, cache: Any = None) -> None:
        """Hand the run's runner and cache to the wrapped pipeline's metrics (judges run here)."""
        self.pipeline.attach(runner=runner, cache=cache)

    def prepare(self) -> None:
        """Connect to the engine and ship the pipeline, while the first requests are in flight."""
        if self._local is not None:
            self._local.prepare()
        if self._remote is not None and self._scorer is None:
            self.backend.open()
            self._scorer = self.backend.open_scoring(self._remote)

    def evaluate(self, records: Sequence[GenerationRecord]) -> list[EvaluationRecord]:
        """One scored record per input record, in order, scored on the engine."""
        if not records:
            return []
        if self._remote is None:
            assert self._local is not None
            return self._local.evaluate(records)
        self.prepare()
        assert self._scorer is not None
        position = {id(record): i for i, record in enumerate(records)}
        results: list[EvaluationRecord | None] = [None] * len(records)
        for scored in self._scorer.score(records, self.batch_size):
            for result in scored:
                results[position[id(result.generation)]] = result
        done = [r for r in results if r is not None]
        if len(done) != len(records):
            raise RuntimeError(f"the engine scored {len(done)} of {len(records)} records")
        if self._local is not None:
            self._merge(done, self._local.evaluate(records))
        return done

    def _merge(self, done: list[EvaluationRecord], local: list[EvaluationRecord]) -> None:
        """Add the local metrics' scores and errors, keeping the pipeline's metric order."""
        order = self.metric_names
        for result, extra in zip(done, local, strict=True):
            scores = {**result.scores, **extra.scores}
            result.scores = {name: scores[name] for name in order if name in scores}
            result.metric_errors.update(extra.metric_errors)

    def close(self) -> None:
        """Stop the workers' scoring processes and this process's judges."""
        scorer, self._scorer = self._scorer, None
        if scorer is not None:
            scorer.close()
        if self._local is not None:
            self._local.close()

    def __enter__(self) -> EngineScoring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
