"""Structural types the engine relies on, so layers depend on shapes rather than classes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from .entities import EvaluationRecord, GenerationRecord

__all__ = ["EvaluationPipelineProtocol", "missing_pipeline_members"]


@runtime_checkable
class EvaluationPipelineProtocol(Protocol):
    """What the orchestrator and the plugin need of a scoring pipeline.

    :class:`pytest_themis.evaluation.pipeline.EvaluationPipeline` is the built-in one; any object
    with these members can be passed as ``evaluation_pipeline=`` / ``pipeline=`` instead.
    """

    @property
    def metric_names(self) -> list[str]:
        """Names of the metrics, in report order."""
        ...

    @property
    def fingerprint(self) -> str:
        """Stable hash of everything that can change a score."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (extractor, metrics) recorded in the manifest."""
        ...

    @property
    def requires_reference(self) -> bool:
        """Whether a metric needs the row's gold answer."""
        ...

    def attach(self, *, runner: Any = None, cache: Any = None) -> None:
        """Receive the run's runner and cache (e.g. for an LLM judge's requests)."""
        ...

    def prepare(self) -> None:
        """Start what scoring needs (sandbox processes …) before the first record arrives."""
        ...

    def evaluate(self, records: Sequence[GenerationRecord]) -> list[EvaluationRecord]:
        """Score a batch of generations."""
        ...

    def close(self) -> None:
        """Release what :meth:`prepare` started."""
        ...


_PIPELINE_MEMBERS = (
    "metric_names",
    "fingerprint",
    "to_dict",
    "requires_reference",
    "attach",
    "prepare",
    "evaluate",
    "close",
)


def missing_pipeline_members(pipeline: object) -> list[str]:
    """The :class:`EvaluationPipelineProtocol` members ``pipeline`` lacks (empty when none)."""
    return [name for name in _PIPELINE_MEMBERS if not hasattr(pipeline, name)]
