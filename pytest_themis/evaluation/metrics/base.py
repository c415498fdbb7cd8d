"""The metric contract: score one (prediction, reference) pair, or a batch of them."""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from ...core.entities import MetricScore
from .._params import public_params

__all__ = ["Metric", "MetricItemError", "coerce_score"]


class MetricItemError(Exception):
    """Raised by :meth:`Metric.score_batch` when the item at ``index`` failed.

    The pipeline turns it into a :class:`~pytest_themis.errors.MetricError` naming the row.
    """

    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(f"item {index}: {type(error).__name__}: {error}")
        self.index = index
        self.error = error


class Metric(ABC):
    """Scores a prediction against a reference.

    ``name`` (the class name unless set) keys the score in every record and report.
    ``requires_reference`` says the metric needs a gold answer; ``uses_raw_text`` makes the
    pipeline hand it the raw response instead of the extracted prediction (so it still scores
    responses whose extraction failed). ``value_range`` is the closed interval scores lie in
    (None: unbounded); gates outside it are rejected before any request. ``wants_records``
    makes the pipeline call ``score_records`` with whole records instead (an LLM judge), and keeps
    the metric in the driver when scoring runs on the engine.
    """

    name: str = "Metric"
    requires_reference: bool = True
    value_range: tuple[float, float] | None = None
    uses_raw_text: bool = False
    wants_records: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    @abstractmethod
    def compute(self, prediction: str, reference: Any) -> float | MetricScore:
        """Score one item: a number (1.0 = correct for accuracy-style metrics) or a MetricScore."""

    def score_batch(self, items: Sequence[tuple[str, Any]]) -> list[MetricScore]:
        """Score every ``(prediction, reference)`` pair. Override to parallelise or batch."""
        scores: list[MetricScore] = []
        for index, (prediction, reference) in enumerate(items):
            try:
                scores.append(coerce_score(self.name, self.compute(prediction, reference)))
            except Exception as exc:
                raise MetricItemError(index, exc) from exc
        return scores

    def params(self) -> dict[str, Any]:
        """Settings that change scores (part of the pipeline fingerprint).

        By default: the public instance attributes holding plain JSON values.
        """
        return public_params(self)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.params()}

    def attach(self, runner: Any = None, cache: Any = None) -> None:  # noqa: B027 - optional hook
        """Receive the run's runner and cache (an LLM judge sends its requests through them)."""

    def prepare(self) -> None:  # noqa: B027 - optional hook, deliberately a no-op
        """Start slow resources in the background (called before generation begins).

        Must not block: the first :meth:`score_batch` is the place to wait for them.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, deliberately a no-op
        """Release resources (worker processes, clients). Safe to call more than once."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def coerce_score(name: str, value: Any) -> MetricScore:
    """Normalise a metric's return value; raise ``TypeError``/``ValueError`` if it is no score."""
    details: dict[str, Any] = {}
    raw = value
    if isinstance(value, MetricScore):
        raw, details = value.value, dict(value.details)
    if not isinstance(raw, numbers.Real):
        raise TypeError(
            f"metric {name} returned {type(raw).__name__} {raw!r:.80}; a score must be a finite "
            "number (or a MetricScore holding one)"
        )
    number = float(raw)
    if not math.isfinite(number):
        raise ValueError(f"metric {name} returned {number}; a score must be a finite number")
    return MetricScore(name=name, value=number, details=details)
