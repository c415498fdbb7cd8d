"""LLMJudge: a model grades each response against a rubric (and pairwise, two cells' answers).

Judge requests are ordinary generation tasks: they go through a :class:`GenerationRunner`
(retries, rate limits, the cost budget) and a :class:`CacheManager` (their own cache key: the
judge model, the rubric and the judged text are all in the rendered judge prompt), so a rerun asks
the judge nothing. A judge call that fails, or a verdict that cannot be read, is a *judge error* on
that sample — never a score. Each score keeps the judge's verdict, reasoning, tokens and cost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...core.entities import (
    CellSpec,
    EvaluationRecord,
    GenerationRecord,
    GenerationTask,
    MetricScore,
    ModelSpec,
    SamplingConfig,
)
from ...errors import ConfigurationError
from .base import Metric

__all__ = ["JudgeFailure", "LLMJudge", "PairwiseResult", "judge_pairwise"]

_SCORE = re.compile(r"score\s*[:=]\s*\**\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE)
_WINNER = re.compile(r"winner\s*[:=]\s*\**\s*(1|2|tie)\b", re.IGNORECASE)

_GRADE = """You are grading a response to a question. Apply the rubric strictly.

Question:
{question}
{reference}
Response to grade:
{response}

Rubric:
{rubric}

Explain your reasoning briefly, then end with a final line "Score: N" where N is an integer from \
{low} to {high}."""

_COMPARE = """You are comparing two responses to the same question. Apply the rubric strictly.

Question:
{question}
{reference}
Response 1:
{first}

Response 2:
{second}

Rubric:
{rubric}

Explain your reasoning briefly, then end with a final line "Winner: 1", "Winner: 2" or \
"Winner: tie"."""


@dataclass(frozen=True)
class JudgeFailure:
    """A sample the judge could not score (the call failed or its verdict was unreadable)."""

    message: str


class LLMJudge(Metric):
    """Scores each response from ``low`` to ``high`` by asking ``model`` to apply ``rubric``.

    The score is normalised to 0–1 (``(verdict - low) / (high - low)``). ``reference_field`` names
    the row field shown to the judge as the reference answer (optional). Pass ``runner`` and
    ``cache`` to share the run's; by default the orchestrator attaches its own before scoring.
    """

    uses_raw_text = True
    requires_reference = False
    wants_records = True

    def __init__(
        self,
        model: str | ModelSpec,
        rubric: str,
        scale: tuple[int, int] | None = None,
        reference_field: str | None = None,
        *,
        name: str = "LLMJudge",
        runner: Any = None,
        cache: Any = None,
        max_tokens: int = 512,
        **model_options: Any,
    ) -> None:
        if not isinstance(rubric, str) or not rubric.strip():
            raise ConfigurationError("LLMJudge needs a rubric: the criteria the judge applies")
        if scale is None:
            raise ConfigurationError(
                "LLMJudge needs a scale, e.g. scale=(1, 5): the lowest and highest verdict the "
                "rubric allows"
            )
        if (
            not isinstance(scale, (tuple, list))
            or len(scale) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in scale)
            or scale[0] >= scale[1]
        ):
            raise ConfigurationError(
                f"LLMJudge scale must be two integers (low, high) with low < high, got {scale!r}"
            )
        from ...providers.models import parse_model  # deferred: only a judge named by a string

        self.model = parse_model(model, **model_options)
        self.rubric = rubric.strip()
        self.scale = (int(scale[0]), int(scale[1]))
        self.reference_field = reference_field
        self.name = name
        self.max_tokens = max_tokens
        self._runner = runner
        self._cache = cache

    def params(self) -> dict[str, Any]:
        return {
            "model": self.model.identifier,
            "provider": self.model.provider,
            "rubric": self.rubric,
            "scale": list(self.scale),
            "reference_field": self.reference_field,
            "max_tokens": self.max_tokens,
        }

    def attach(self, runner: Any = None, cache: Any = None) -> None:
        """Use the run's runner settings and cache (called by the orchestrator before scoring)."""
        if self._runner is None and runner is not None:
            self._runner = runner
        if self._cache is None and cache is not None:
            self._cache = cache

    def compute(self, prediction: str, reference: Any) -> MetricScore:
        raise ConfigurationError("LLMJudge scores whole records; use it in an EvaluationPipeline")

    # -- scoring -------------------------------------------------------------------------------

    def score_records(
        self, records: Sequence[EvaluationRecord]
    ) -> list[MetricScore | JudgeFailure]:
        """One score (or :class:`JudgeFailure`) per record, in order."""
        tasks = [self._grade_task(record) for record in records]
        answers = self._ask(tasks)
        return [self._verdict(answers[task.task_id]) for task in tasks]

    def _grade_task(self, record: EvaluationRecord) -> GenerationTask:
        task = record.task
        prompt = _GRADE.format(
            question=task.prompt_text,
            reference=self._reference_block(task),
            response=record.generation.text or "",
            rubric=self.rubric,
            low=self.scale[0],
            high=self.scale[1],
        )
        return self._task(f"{task.task_id}", prompt)

    def _reference_block(self, task: GenerationTask) -> str:
        if self.reference_field is None:
            return ""
        row: Mapping[str, Any] = task.row or {}
        if self.reference_field not in row:
            raise ConfigurationError(
                f"LLMJudge reference_field {self.reference_field!r} is not a field of row "
                f"{task.row_id!r} (fields: {', '.join(map(str, row)) or 'none'})"
            )
        return f"\nReference answer:\n{row[self.reference_field]}\n"

    def _task(self, ident: str, prompt: str) -> GenerationTask:
        cell = CellSpec(
            model=self.model,
            template_name=f"judge-{self.name}",
            sampling=SamplingConfig(temperature=0.0, max_tokens=self.max_tokens),
        )
        return GenerationTask(
            cell=cell,
            row_id=ident,
            sample_index=0,
            messages=({"role": "user", "content": prompt},),
        )

    def _ask(self, tasks: Sequence[GenerationTask]) -> dict[str, GenerationRecord]:
        """Judge answers by task id: cached ones read, the rest sent through the runner."""
        cache = self._cache
        answers: dict[str, GenerationRecord] = {}
        missing: list[GenerationTask] = []
        for task in tasks:
            found = cache.lookup(task) if cache is not None else None
            if found is not None:
                answers[task.task_id] = found
            else:
                missing.append(task)
        if missing:
            runner = self._runner_for_judging()
            for batch in runner.run_batches(missing):
                if cache is not None:
                    cache.store_many(batch)
                for record in batch:
                    answers[record.task.task_id] = record
        return answers

    def _runner_for_judging(self) -> Any:
        from ...generation.runner import GenerationRunner

        base = self._runner
        if base is None:
            return GenerationRunner(max_parallel=8, processes=1)
        # The run's router, retries, timeout and budget; judge calls stay in this process.
        return GenerationRunner(
            base.executor,
            max_parallel=base.max_parallel,
            max_retries=base.max_retries,
            timeout=base.timeout,
            max_cost_usd=base.max_cost_usd,
            processes=1,
        )

    def _verdict(self, answer: GenerationRecord) -> MetricScore | JudgeFailure:
        if answer.error is not None:
            return JudgeFailure(f"judge {self.model.identifier} failed: {answer.error.message}")
        text = answer.text or ""
        found = _SCORE.findall(text)
        low, high = self.scale
        if not found or not low <= float(found[-1]) <= high:
            return JudgeFailure(
                f"judge {self.model.identifier} gave no readable 'Score: N' from {low} to "
                f"{high}: {' '.join(text.split())[:120]!r}"
            )
        verdict = float(found[-1])
        return MetricScore(
            name=self.name,
            value=(verdict - low) / (high - low),
            details=_details(answer, verdict=verdict, reasoning=_SCORE.split(text)[0].strip()),
        )


def _details(answer: GenerationRecord, **extra: Any) -> dict[str, Any]:
    usage = answer.usage
    return {
        **extra,
        "judge_tokens": usage.total_tokens if usage is not None else None,
        "judge_cost": answer.cost,
        "judge_cached": answer.cached,
    }


@dataclass(frozen=True)
class PairwiseResult:
    """Pairwise verdicts of cell ``a`` against cell ``b``, each row asked in both orders.

    ``win_rate`` is the mean over rows of the order-averaged outcome (1 = a wins, 0.5 = tie,
    0 = b wins); rows where either order failed are in ``failures``, not in the rate.
    """

    cell_a: str
    cell_b: str
    outcomes: dict[str, float]
    orders: dict[str, tuple[str, str]]
    failures: dict[str, str]

    @property
    def win_rate(self) -> float:
        values = list(self.outcomes.values())
        return sum(values) / len(values) if values else float("nan")


def judge_pairwise(
    records_a: Sequence[EvaluationRecord],
    records_b: Sequence[EvaluationRecord],
    judge: LLMJudge,
) -> PairwiseResult:
    """Compare two cells' answers row by row; each pair is judged as (a, b) and as (b, a).

    Averaging both orders cancels the judge's position bias.
    """
    by_row_b = {(r.row_id, r.task.sample_index): r for r in records_b}
    pairs = [
        (a, by_row_b[(a.row_id, a.task.sample_index)])
        for a in records_a
        if (a.row_id, a.task.sample_index) in by_row_b
    ]
    if not pairs:
        raise ConfigurationError("judge_pairwise: the two cells share no rows")
    tasks: list[GenerationTask] = []
    for a, b in pairs:
        for order, (first, second) in (("ab", (a, b)), ("ba", (b, a))):
            prompt = _COMPARE.format(
                question=a.task.prompt_text,
                reference=judge._reference_block(a.task),
                first=first.generation.text or "",
                second=second.generation.text or "",
                rubric=judge.rubric,
            )
            tasks.append(judge._task(f"pair/{a.row_id}#{a.task.sample_index}/{order}", prompt))
    answers = judge._ask(tasks)
    outcomes: dict[str, float] = {}
    orders: dict[str, tuple[str, str]] = {}
    failures: dict[str, str] = {}
    for a, _ in pairs:
        key = f"{a.row_id}#{a.task.sample_index}"
        got = [_winner(answers[judge._task(f"pair/{key}/{o}", "").task_id]) for o in ("ab", "ba")]
        orders[key] = (str(got[0]), str(got[1]))
        if any(isinstance(g, JudgeFailure) for g in got):
            failures[key] = next(g.message for g in got if isinstance(g, JudgeFailure))
            continue
        win_ab, win_ba = str(got[0]), str(got[1])  # "1" = the response shown first wins
        score_ab = {"1": 1.0, "2": 0.0, "tie": 0.5}[win_ab]
        score_ba = {"1": 0.0, "2": 1.0, "tie": 0.5}[win_ba]
        outcomes[key] = (score_ab + score_ba) / 2
    return PairwiseResult(pairs[0][0].cell_id, pairs[0][1].cell_id, outcomes, orders, failures)


def _winner(answer: GenerationRecord) -> str | JudgeFailure:
    if answer.error is not None:
        return JudgeFailure(f"judge failed: {answer.error.message}")
    found = _WINNER.findall(answer.text or "")
    if not found:
        return JudgeFailure(
            f"no 'Winner: 1|2|tie' in {' '.join((answer.text or '').split())[:80]!r}"
        )
    return str(found[-1]).lower()
