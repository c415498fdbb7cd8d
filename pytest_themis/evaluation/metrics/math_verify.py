"""MathVerifyAccuracy: symbolic answer checking with math-verify, in a killable process pool."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from ...core.entities import MetricScore
from ...errors import ConfigurationError
from .._quick_math import quick_match
from .base import Metric, MetricItemError

__all__ = ["MathVerifyAccuracy"]

_HANDLER = "pytest_themis.evaluation._math_worker:score_pair"


class MathVerifyAccuracy(Metric):
    """1.0 when math-verify judges the prediction equal to the reference (e.g. ``0.5 == \\frac12``).

    Obvious matches (identical up to LaTeX spacing, or equal integers/decimals/simple fractions)
    are accepted in-process. Everything else is parsed and verified in ``workers`` persistent
    processes (default: one per CPU),
    started on first use. Each item gets ``timeout`` seconds of wall-clock time; a worker that
    overruns is killed and replaced and the item scores 0 with ``{"timeout": True}``. Call
    :meth:`close` (or use the pipeline's ``close``) to stop the workers early; they also stop at
    interpreter exit.
    """

    value_range = (0.0, 1.0)

    def __init__(self, timeout: float = 5.0, workers: int | None = None) -> None:
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            raise ConfigurationError(
                f"MathVerifyAccuracy timeout must be a positive number of seconds, got {timeout!r}"
            )
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ConfigurationError(
                f"MathVerifyAccuracy workers must be a positive integer, got {workers!r}"
            )
        self.timeout = float(timeout)
        self.workers = workers
        self._pool: Any = None
        self._lock = threading.Lock()

    def params(self) -> dict[str, Any]:
        # Neither timeout nor worker count changes a verdict on well-behaved input.
        return {}

    @property
    def pool(self) -> Any:
        """The worker pool, created (not yet started) on first access."""
        with self._lock:
            if self._pool is None:
                from .._sandbox import WorkerPool, default_size

                self._pool = WorkerPool(_HANDLER, self.workers or default_size())
            return self._pool

    def prepare(self) -> None:
        """Launch the worker processes now, so their start-up overlaps generation."""
        self.pool.launch()

    def compute(self, prediction: str, reference: Any) -> MetricScore:
        return self.score_batch([(prediction, reference)])[0]

    def score_batch(self, items: Sequence[tuple[str, Any]]) -> list[MetricScore]:
        payloads: list[tuple[str, str]] = []
        slots: list[int] = []
        scores: list[MetricScore | None] = [None] * len(items)
        for index, (prediction, reference) in enumerate(items):
            gold = _gold_text(reference)
            if gold is None:
                raise MetricItemError(
                    index,
                    ValueError(
                        f"reference {reference!r:.80} is empty; MathVerifyAccuracy needs one"
                    ),
                )
            if not prediction or not str(prediction).strip():
                scores[index] = MetricScore(self.name, 0.0, {"prediction_unparsed": True})
                continue
            if quick_match(gold, str(prediction)):
                scores[index] = MetricScore(self.name, 1.0, {"fast_path": True})
                continue
            payloads.append((gold, str(prediction)))
            slots.append(index)
        outcomes = self.pool.map(payloads, self.timeout) if payloads else []
        for index, outcome in zip(slots, outcomes, strict=True):
            if outcome.status == "ok":
                value, details = outcome.value
                scores[index] = MetricScore(self.name, float(value), dict(details))
            elif outcome.status == "timeout":
                scores[index] = MetricScore(self.name, 0.0, {"timeout": True})
            else:
                scores[index] = MetricScore(
                    self.name, 0.0, {"error": outcome.message or outcome.status}
                )
        return [s for s in scores if s is not None]

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_pool"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def _gold_text(reference: Any) -> str | None:
    if reference is None or isinstance(reference, bool):
        return None
    text = reference if isinstance(reference, str) else str(reference)
    return text if text.strip() else None
