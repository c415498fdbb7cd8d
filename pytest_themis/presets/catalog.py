"""More benchmarks: MMLU-Pro, GPQA Diamond, ARC-Challenge, AIME 2024/2025 and HumanEval.

Each is pinned to a dataset revision where one is known, reads local copies in the dataset's own
field names (``--themis-data-dir``), and is scored the way its authors evaluate it: option letters
read with :func:`~pytest_themis.evaluation.choice.find_choice`, integer answers from the final
``\\boxed{}``, code run against the problem's tests in the sandbox.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from ..core.entities import SamplingConfig
from ..errors import DatasetError
from ..generation.templates import PromptTemplate
from .base import BenchmarkPreset

__all__ = [
    "AIME24",
    "AIME25",
    "ARC_CHALLENGE",
    "CATALOG_PRESETS",
    "GPQA_DIAMOND",
    "GPQA_SHUFFLE_RULE",
    "HUMANEVAL",
    "MMLU_PRO",
]

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_MC_INSTRUCTION = (
    "Think step by step, then finish your response with a final line of the form "
    '"The answer is (X)" where X is the letter of the correct option.'
)


def _options_text(options: Sequence[Any]) -> str:
    return "\n".join(f"({_LETTERS[i]}) {text}" for i, text in enumerate(options))


def _gold(benchmark: str, label: str, letter: Any, options: Sequence[Any]) -> dict[str, Any]:
    """The reference of a multiple-choice row; a letter outside the row's options is an error."""
    valid = _LETTERS[: len(options)]
    if not isinstance(letter, str) or letter.strip().upper() not in valid or not letter.strip():
        raise DatasetError(
            f"benchmark {benchmark!r}: {label} has answer {letter!r}, which is not one of its "
            f"{len(options)} options ({', '.join(valid) or 'none'}); fix the row's answer field"
        )
    return {"answer": letter.strip().upper(), "options": [str(o) for o in options]}


def _options(benchmark: str, label: str, value: Any, low: int = 2, high: int = 26) -> list[Any]:
    if not isinstance(value, (list, tuple)) or not low <= len(value) <= high:
        raise DatasetError(
            f"benchmark {benchmark!r}: {label} needs a list of {low} to {high} options, "
            f"got {value!r:.80}"
        )
    return list(value)


# --------------------------------------------------------------------------- MMLU-Pro


def _prepare_mmlu_pro(row: dict[str, Any], label: str) -> dict[str, Any]:
    options = _options("mmlu_pro", label, row["options"], 2, 10)
    row["choices"] = _options_text(options)
    row["gold"] = _gold("mmlu_pro", label, row["answer"], options)
    return row


MMLU_PRO = BenchmarkPreset(
    name="mmlu_pro",
    description="MMLU-Pro: 12,032 ten-option questions across 14 subjects (test split), CoT",
    source="TIGER-Lab/MMLU-Pro",
    config=None,
    split="test",
    revision="b189ec765aa7ed75c8acfea42df31fdae71f97be",
    id_field="question_id",
    reference_field="gold",
    prompt=PromptTemplate(
        name="mmlu-pro-cot",
        template=(
            "The following is a multiple choice question about {category}. "
            + _MC_INSTRUCTION
            + "\n\nQuestion: {question}\n\nOptions:\n{choices}"
        ),
    ),
    primary_metric="ChoiceAccuracy",
    sampling=SamplingConfig(temperature=0.0, max_tokens=2048),
    extractor_factory=lambda: _choice_extractor("ABCDEFGHIJ"),
    metric_factories=(lambda: _choice_metric(),),
    fields=("question_id", "question", "options", "answer", "category"),
    prepare_row=_prepare_mmlu_pro,
)


# --------------------------------------------------------------------------- GPQA Diamond

#: How GPQA's options are ordered: the four answers shuffled by ``random.Random`` seeded with
#: this prefix plus the row's ``Record ID`` — the same order on every machine and run.
GPQA_SHUFFLE_RULE = "gpqa-options-v1:"


def _prepare_gpqa(row: dict[str, Any], label: str) -> dict[str, Any]:
    answers = [
        row["Correct Answer"],
        row["Incorrect Answer 1"],
        row["Incorrect Answer 2"],
        row["Incorrect Answer 3"],
    ]
    answers = [str(a).strip() for a in answers]
    if len(set(answers)) != 4 or not all(answers):
        raise DatasetError(
            f"benchmark 'gpqa_diamond': {label} needs four different non-empty answers"
        )
    order = list(range(4))
    random.Random(GPQA_SHUFFLE_RULE + str(row["Record ID"])).shuffle(order)
    options = [answers[i] for i in order]
    row["choices"] = _options_text(options)
    row["option_order"] = order
    row["gold"] = {"answer": _LETTERS[order.index(0)], "options": options}
    return row


GPQA_DIAMOND = BenchmarkPreset(
    name="gpqa_diamond",
    description=(
        "GPQA Diamond: 198 graduate-level science questions, four options shuffled per row "
        f"with the seed {GPQA_SHUFFLE_RULE!r} + Record ID (gated on the Hub: use a local copy)"
    ),
    source="Idavidrein/gpqa",
    config="gpqa_diamond",
    split="train",
    revision=None,
    id_field="Record ID",
    reference_field="gold",
    prompt=PromptTemplate(
        name="gpqa-cot",
        template=_MC_INSTRUCTION + "\n\nQuestion: {Question}\n\nOptions:\n{choices}",
    ),
    primary_metric="ChoiceAccuracy",
    sampling=SamplingConfig(temperature=0.0, max_tokens=4096),
    extractor_factory=lambda: _choice_extractor("ABCD"),
    metric_factories=(lambda: _choice_metric(),),
    fields=(
        "Record ID",
        "Question",
        "Correct Answer",
        "Incorrect Answer 1",
        "Incorrect Answer 2",
        "Incorrect Answer 3",
    ),
    prepare_row=_prepare_gpqa,
)


# --------------------------------------------------------------------------- ARC-Challenge


def _prepare_arc(row: dict[str, Any], label: str) -> dict[str, Any]:
    choices = row["choices"]
    if not isinstance(choices, dict) or not isinstance(choices.get("text"), list):
        raise DatasetError(
            f"benchmark 'arc_challenge': {label} needs 'choices' as "
            '{"text": [...], "label": [...]}'
        )
    texts = _options("arc_challenge", label, choices["text"], 2, 8)
    labels = [str(x) for x in choices.get("label") or _LETTERS[: len(texts)]]
    if len(labels) != len(texts):
        raise DatasetError(
            f"benchmark 'arc_challenge': {label} has {len(texts)} option texts but "
            f"{len(labels)} labels"
        )
    key = str(row["answerKey"]).strip()
    if key not in labels:
        raise DatasetError(
            f"benchmark 'arc_challenge': {label} has answerKey {key!r}, which is not one of its "
            f"option labels ({', '.join(labels)}); fix the row"
        )
    # Some rows label options 1-4: always show and score letters.
    row["options_text"] = _options_text(texts)
    row["gold"] = _gold("arc_challenge", label, _LETTERS[labels.index(key)], texts)
    return row


ARC_CHALLENGE = BenchmarkPreset(
    name="arc_challenge",
    description="ARC-Challenge: 1,172 grade-school science questions (test split)",
    source="allenai/ai2_arc",
    config="ARC-Challenge",
    split="test",
    revision="210d026faf9955653af8916fad021475a3f00453",
    id_field="id",
    reference_field="gold",
    prompt=PromptTemplate(
        name="arc-cot",
        template=_MC_INSTRUCTION + "\n\nQuestion: {question}\n\nOptions:\n{options_text}",
    ),
    primary_metric="ChoiceAccuracy",
    sampling=SamplingConfig(temperature=0.0, max_tokens=1024),
    extractor_factory=lambda: _choice_extractor("ABCDEFGH"),
    metric_factories=(lambda: _choice_metric(),),
    fields=("id", "question", "choices", "answerKey"),
    prepare_row=_prepare_arc,
)


# --------------------------------------------------------------------------- AIME


def _prepare_aime(benchmark: str) -> Any:
    def prepare(row: dict[str, Any], label: str) -> dict[str, Any]:
        text = str(row["answer"]).strip()
        if not text.isdigit() or not 0 <= int(text) <= 999:
            raise DatasetError(
                f"benchmark {benchmark!r}: {label} has answer {row['answer']!r}; AIME answers "
                "are integers from 0 to 999"
            )
        row["gold"] = str(int(text))
        return row

    return prepare


_AIME_PROMPT = PromptTemplate(
    name="aime-boxed",
    template=(
        "Solve the following problem. The answer is an integer from 0 to 999. Reason step by "
        "step, then put the final answer within \\boxed{{}}.\n\n{problem}"
    ),
)


def _aime(name: str, year: int, source: str, split: str, revision: str) -> BenchmarkPreset:
    return BenchmarkPreset(
        name=name,
        description=f"AIME {year}: 30 competition problems, integer answers 0-999",
        source=source,
        config=None,
        split=split,
        revision=revision,
        id_field="id",
        reference_field="gold",
        prompt=_AIME_PROMPT,
        primary_metric="NumericMatch",
        sampling=SamplingConfig(temperature=0.0, max_tokens=8192),
        extractor_factory="BoxedExtractor",
        fields=("problem", "answer"),
        prepare_row=_prepare_aime(name),
    )


AIME24 = _aime(
    "aime24", 2024, "HuggingFaceH4/aime_2024", "train", "2fe88a2f1091d5048c0f36abc874fb997b3dd99a"
)
AIME25 = _aime("aime25", 2025, "math-ai/aime25", "test", "563bb8404243c5f09de6ec262f2db674fe5bce9b")


# --------------------------------------------------------------------------- HumanEval


def _prepare_humaneval(row: dict[str, Any], label: str) -> dict[str, Any]:
    entry = str(row["entry_point"])
    if not entry.isidentifier():
        raise DatasetError(
            f"benchmark 'humaneval': {label} has entry_point {entry!r}, not a function name"
        )
    row["reference"] = {"prompt": row["prompt"], "test": row["test"], "entry_point": entry}
    return row


HUMANEVAL = BenchmarkPreset(
    name="humaneval",
    description="HumanEval: 164 Python functions, scored by running their tests (pass@1)",
    source="openai/openai_humaneval",
    config=None,
    split="test",
    revision="7dce6050a7d6d172f3cc5c32aa97f52fa1a2e544",
    id_field="task_id",
    reference_field="reference",
    prompt=PromptTemplate(
        name="humaneval-complete",
        template=(
            "Complete the following Python function. Reply with the whole function, imports "
            "included, in one ```python code block.\n\n```python\n{prompt}```"
        ),
    ),
    primary_metric="CodeExecution",
    sampling=SamplingConfig(temperature=0.0, max_tokens=1024),
    extractor_factory=lambda: _code_extractor(),
    metric_factories=(lambda: _code_metric(),),
    fields=("task_id", "prompt", "test", "entry_point"),
    prepare_row=_prepare_humaneval,
)


# Factories import the scoring modules only when a preset is scored, not when it is registered.
def _choice_extractor(letters: str) -> Any:
    from ..evaluation.choice import ChoiceExtractor

    return ChoiceExtractor(letters)


def _choice_metric() -> Any:
    from ..evaluation.choice import ChoiceAccuracy

    return ChoiceAccuracy()


def _code_extractor() -> Any:
    from ..evaluation.code_extraction import CodeExtractor

    return CodeExtractor()


def _code_metric() -> Any:
    from ..evaluation.metrics.code_execution import CodeExecution

    return CodeExecution()


CATALOG_PRESETS = (MMLU_PRO, GPQA_DIAMOND, ARC_CHALLENGE, AIME24, AIME25, HUMANEVAL)
