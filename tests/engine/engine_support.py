"""Engine test helpers: a scriptable in-process provider and a minimal pipeline."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Sequence

from pytest_themis.core.entities import (
    EvaluationRecord,
    GenerationRecord,
    GenerationTask,
    MetricScore,
    ProviderResponse,
    TokenUsage,
)
from pytest_themis.providers.base import Provider


class ScriptedProvider(Provider):
    """Answers ``str(eval-free arithmetic)`` of ``a+b`` prompts; ``script`` may raise per call."""

    supports_async = True

    def __init__(
        self,
        script: Callable[[GenerationTask, int], None] | None = None,
        delay: float = 0.0,
        cost: float | None = None,
    ) -> None:
        self.script = script
        self.delay = delay
        self.cost = cost
        self.calls: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def _answer(self, task: GenerationTask) -> ProviderResponse:
        with self._lock:
            self.calls[task.task_id] += 1
            attempt = self.calls[task.task_id]
        if self.script is not None:
            self.script(task, attempt)
        left, _, right = task.prompt_text.partition("+")
        text = str(int(left) + int(right)) if right else task.prompt_text
        return ProviderResponse(text, TokenUsage(3, 1), self.cost, "stop")

    def generate(self, task: GenerationTask, *, timeout: float | None = None) -> ProviderResponse:
        return self._answer(task)

    async def agenerate(
        self, task: GenerationTask, *, timeout: float | None = None
    ) -> ProviderResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            return self._answer(task)
        finally:
            self.in_flight -= 1

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


class MatchPipeline:
    """Scores 1.0 when the text equals the reference (enough to test the orchestrator)."""

    metric_names = ["ExactMatch"]
    requires_reference = True
    fingerprint = "match-pipeline"

    def to_dict(self) -> dict[str, str]:
        return {"name": "match"}

    def attach(self, *, runner: object = None, cache: object = None) -> None:
        pass

    def prepare(self) -> None:
        pass

    def close(self) -> None:
        pass

    def evaluate(self, records: Sequence[GenerationRecord]) -> list[EvaluationRecord]:
        out = []
        for rec in records:
            if rec.error is not None:
                out.append(EvaluationRecord(rec))
                continue
            value = float(rec.text == str(rec.task.reference))
            out.append(
                EvaluationRecord(
                    rec,
                    prediction=rec.text,
                    scores={"ExactMatch": MetricScore("ExactMatch", value)},
                )
            )
        return out
