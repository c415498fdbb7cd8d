"""The built-in benchmarks: ``demo`` (shipped), ``gsm8k`` and ``math500`` (Hugging Face Hub)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..core.entities import SamplingConfig
from ..errors import DatasetError
from ..generation.templates import PromptTemplate
from .base import BenchmarkPreset

__all__ = ["DEMO", "DEMO_FILE", "GSM8K", "MATH500", "BUILTIN_PRESETS", "canonical_number"]

DEMO_FILE = Path(__file__).resolve().parent / "data" / "demo.jsonl"

_NUMBER_NOISE = re.compile(r"[,$\s]")


def canonical_number(text: str) -> str | None:
    """Canonical text of a number: ``"1,234"`` → ``"1234"``, ``"3.50"`` → ``"3.5"``.

    Returns ``None`` when ``text`` is not a number.
    """
    cleaned = _NUMBER_NOISE.sub("", text).rstrip(".")
    if not cleaned:
        return None
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


_STEP_BY_STEP = (
    "Solve the following math word problem step by step. "
    'Finish your response with a final line of the form "#### <number>".\n\n'
    "Problem: {question}"
)


def _prepare_demo(row: dict[str, Any], label: str) -> dict[str, Any]:
    answer = row["answer"]
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise DatasetError(
            f"benchmark 'demo': {label} has answer {answer!r} ({type(answer).__name__}); "
            "demo answers must be integers"
        )
    return row


def _prepare_gsm8k(row: dict[str, Any], label: str) -> dict[str, Any]:
    answer = row["answer"]
    tail = str(answer).rsplit("####", 1)
    gold = canonical_number(tail[1]) if len(tail) == 2 else None
    if gold is None:
        raise DatasetError(
            f"benchmark 'gsm8k': {label} has no parsable gold answer: its 'answer' field must "
            f"end with '#### <number>', got ...{str(answer)[-60:]!r}"
        )
    row["gold"] = gold
    return row


def _prepare_math500(row: dict[str, Any], label: str) -> dict[str, Any]:
    answer = row["answer"]
    if not isinstance(answer, str) or not answer.strip():
        raise DatasetError(
            f"benchmark 'math500': {label} has an empty or non-text 'answer' ({answer!r}); "
            "every MATH-500 row needs its final answer as a string"
        )
    return row


DEMO = BenchmarkPreset(
    name="demo",
    description="50 short arithmetic word problems shipped with pytest-themis (offline smoke test)",
    source=None,
    config=None,
    split="train",
    revision=None,
    id_field="id",
    reference_field="answer",
    prompt=PromptTemplate(name="demo-cot", template=_STEP_BY_STEP),
    primary_metric="NumericMatch",
    default_model="fake:fake-math-llm",
    # The fake model scores 0.82 here; broken extraction or scoring scores far below.
    default_fail_under=0.6,
    sampling=SamplingConfig(temperature=0.0, max_tokens=512),
    extractor_factory="GSM8KExtractor",
    fields=("id", "question", "answer"),
    prepare_row=_prepare_demo,
    packaged_file=DEMO_FILE,
)

GSM8K = BenchmarkPreset(
    name="gsm8k",
    description="GSM8K grade-school math word problems (test split, 1319 problems)",
    source="openai/gsm8k",
    config="main",
    split="test",
    revision="cc7b047b6e5bb11b4f1af84efc572db110a51b3c",
    id_field="id",
    reference_field="gold",
    prompt=PromptTemplate(name="gsm8k-cot", template=_STEP_BY_STEP),
    primary_metric="NumericMatch",
    sampling=SamplingConfig(temperature=0.0, max_tokens=512),
    extractor_factory="GSM8KExtractor",
    fields=("question", "answer"),
    prepare_row=_prepare_gsm8k,
)

MATH500 = BenchmarkPreset(
    name="math500",
    description="MATH-500 competition math problems (HuggingFaceH4 subset of MATH, test split)",
    source="HuggingFaceH4/MATH-500",
    config=None,
    split="test",
    revision="ff5b20257d8185524591543f8ff5993951537bb8",
    id_field="unique_id",
    reference_field="answer",
    prompt=PromptTemplate(
        name="math500-boxed",
        template=(
            "Solve the following math problem step by step. "
            "Put your final answer within \\boxed{{}}.\n\n{problem}"
        ),
    ),
    primary_metric="MathVerifyAccuracy",
    sampling=SamplingConfig(temperature=0.0, max_tokens=2048),
    extractor_factory="MathVerifyExtractor",
    fields=("problem", "answer", "unique_id"),
    prepare_row=_prepare_math500,
)

BUILTIN_PRESETS = (DEMO, GSM8K, MATH500)
