"""The catalog presets, run offline from small local copies in each dataset's own format."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_themis import evaluate
from pytest_themis.errors import DatasetError
from pytest_themis.presets import get_benchmark_preset
from pytest_themis.presets.catalog import GPQA_SHUFFLE_RULE


def _write(folder: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


def _answer_key(
    rows: list[dict[str, Any]],
    key: Callable[[dict[str, Any]], str],
    text: Callable[[dict[str, Any]], str],
) -> Callable[[str], str]:
    """A model that knows the answers: it finds the row by its question text in the prompt."""
    table = [(text(r), key(r)) for r in rows]

    def model(prompt: str) -> str:
        for needle, answer in table:
            if needle in prompt:
                return answer
        return "I do not know."

    return model


MMLU_ROWS = [
    {
        "question_id": 1,
        "question": "Capital of France?",
        "options": [
            "Rome",
            "Paris",
            "Oslo",
            "Bern",
            "Riga",
            "Kyiv",
            "Lima",
            "Doha",
            "Baku",
            "Sofia",
        ],
        "answer": "B",
        "answer_index": 1,
        "category": "geography",
        "cot_content": "",
        "src": "x",
    },
    {
        "question_id": 2,
        "question": "2 + 2?",
        "options": ["3", "4", "5"],
        "answer": "B",
        "answer_index": 1,
        "category": "math",
        "cot_content": "",
        "src": "x",
    },
    {
        "question_id": 3,
        "question": "Largest planet?",
        "options": ["Mars", "Venus", "Jupiter", "Earth"],
        "answer": "C",
        "answer_index": 2,
        "category": "astronomy",
        "cot_content": "",
        "src": "x",
    },
]


def test_mmlu_pro_scores_letters_in_real_forms(tmp_path: Path) -> None:
    replies = {
        "Capital": "Thinking… the answer is (B)",
        "2 + 2": "**Answer:** (A)",
        "Largest": "The answer is C or D.",
    }
    model = _answer_key(
        MMLU_ROWS,
        lambda r: replies[next(k for k in replies if k in r["question"])],
        lambda r: r["question"],
    )
    report = evaluate(
        "mmlu_pro", model=model, data_dir=_write(tmp_path, "mmlu_pro", MMLU_ROWS), cache="off"
    )
    scores = [r.scores["ChoiceAccuracy"].value for r in report.records]
    assert scores == [1.0, 0.0, 0.0]  # right; wrong letter; two final choices = no answer
    prompt = report.records[0].generation.task.messages[-1]["content"]
    assert "(J) Sofia" in prompt and "geography" in prompt


def test_mmlu_pro_rejects_an_answer_outside_the_options(tmp_path: Path) -> None:
    bad = [dict(MMLU_ROWS[1], answer="E")]
    with pytest.raises(DatasetError, match=r"answer 'E'.*not one of its 3 options \(A, B, C\)"):
        evaluate(
            "mmlu_pro", model="fake:x", data_dir=_write(tmp_path, "mmlu_pro", bad), cache="off"
        )


def test_a_local_copy_missing_a_field_is_a_clear_error(tmp_path: Path) -> None:
    bad = [{k: v for k, v in MMLU_ROWS[0].items() if k != "options"}]
    with pytest.raises(DatasetError, match="lacks field 'options'"):
        evaluate(
            "mmlu_pro", model="fake:x", data_dir=_write(tmp_path, "mmlu_pro", bad), cache="off"
        )


GPQA_ROWS = [
    {
        "Record ID": f"rec{i}",
        "Question": f"Question number {i}?",
        "Correct Answer": f"right {i}",
        "Incorrect Answer 1": f"wrong a{i}",
        "Incorrect Answer 2": f"wrong b{i}",
        "Incorrect Answer 3": f"wrong c{i}",
    }
    for i in range(8)
]


def test_gpqa_shuffles_options_reproducibly_and_scores_by_the_shuffled_letter(
    tmp_path: Path,
) -> None:
    import random

    def correct_letter(row: dict[str, Any]) -> str:
        order = list(range(4))
        random.Random(GPQA_SHUFFLE_RULE + row["Record ID"]).shuffle(order)
        return "ABCD"[order.index(0)]

    model = _answer_key(
        GPQA_ROWS, lambda r: f"The answer is ({correct_letter(r)})", lambda r: r["Question"]
    )
    folder = _write(tmp_path, "gpqa_diamond", GPQA_ROWS)
    first = evaluate("gpqa_diamond", model=model, data_dir=folder, cache="off")
    assert first.evaluation_report.metrics["ChoiceAccuracy"].mean == 1.0
    letters = {correct_letter(r) for r in GPQA_ROWS}
    assert len(letters) > 1  # the correct answer does not always sit at (A)
    again = evaluate("gpqa_diamond", model=model, data_dir=folder, cache="off")
    assert [r.generation.task.messages[-1]["content"] for r in again.records] == [
        r.generation.task.messages[-1]["content"] for r in first.records
    ]


ARC_ROWS = [
    {
        "id": "Mercury_1",
        "question": "Which is a gas?",
        "choices": {"text": ["ice", "steam", "rock", "wood"], "label": ["A", "B", "C", "D"]},
        "answerKey": "B",
    },
    {
        "id": "Mercury_2",
        "question": "Which is a metal?",
        "choices": {"text": ["iron", "salt", "glass", "sand"], "label": ["1", "2", "3", "4"]},
        "answerKey": "1",
    },
]


def test_arc_maps_numeric_labels_to_letters(tmp_path: Path) -> None:
    model = _answer_key(
        ARC_ROWS,
        lambda r: "Answer: (B) steam" if r["id"] == "Mercury_1" else "The answer is iron.",
        lambda r: r["question"],
    )
    report = evaluate(
        "arc_challenge",
        model=model,
        data_dir=_write(tmp_path, "arc_challenge", ARC_ROWS),
        cache="off",
    )
    assert [r.scores["ChoiceAccuracy"].value for r in report.records] == [1.0, 1.0]
    assert "(A) iron" in report.records[1].generation.task.messages[-1]["content"]


def test_arc_rejects_an_answer_key_that_is_not_a_label(tmp_path: Path) -> None:
    bad = [dict(ARC_ROWS[0], answerKey="E")]
    with pytest.raises(DatasetError, match="answerKey 'E'"):
        evaluate(
            "arc_challenge",
            model="fake:x",
            data_dir=_write(tmp_path, "arc_challenge", bad),
            cache="off",
        )


@pytest.mark.parametrize("name", ["aime24", "aime25"])
def test_aime_reads_the_boxed_integer(tmp_path: Path, name: str) -> None:
    rows = [
        {"id": i, "problem": f"Problem {i}: find n.", "answer": str(a), "solution": ""}
        for i, a in enumerate([33, 204, 7])
    ]
    replies = {0: "… so $n = \\boxed{033}$.", 1: "The answer is \\boxed{204}", 2: "\\boxed{8}"}
    model = _answer_key(rows, lambda r: replies[r["id"]], lambda r: f"Problem {r['id']}:")
    report = evaluate(name, model=model, data_dir=_write(tmp_path, name, rows), cache="off")
    assert [r.scores["NumericMatch"].value for r in report.records] == [1.0, 1.0, 0.0]


def test_aime_rejects_a_non_integer_answer(tmp_path: Path) -> None:
    rows = [{"id": 0, "problem": "p", "answer": "1/2"}]
    with pytest.raises(DatasetError, match="integers from 0 to 999"):
        evaluate("aime24", model="fake:x", data_dir=_write(tmp_path, "aime24", rows), cache="off")


HUMANEVAL_ROWS = [
    {
        "task_id": "HumanEval/0",
        "prompt": 'from typing import List\n\n\ndef total(xs: List[int]) -> int:\n    """Sum."""\n',
        "canonical_solution": "    return sum(xs)\n",
        "test": "def check(candidate):\n    assert candidate([1, 2, 3]) == 6\n",
        "entry_point": "total",
    },
    {
        "task_id": "HumanEval/1",
        "prompt": 'def shout(s: str) -> str:\n    """Upper case."""\n',
        "canonical_solution": "    return s.upper()\n",
        "test": "def check(candidate):\n    assert candidate('ab') == 'AB'\n",
        "entry_point": "shout",
    },
]


def _humaneval_model(solutions: dict[str, str]) -> Callable[[str], str]:
    def model(prompt: str) -> str:
        for row in HUMANEVAL_ROWS:
            if row["prompt"] in prompt:
                return f"Here you go:\n```python\n{row['prompt']}{solutions[row['task_id']]}```"
        return ""

    return model


def test_humaneval_canonical_solutions_pass_and_swapped_ones_fail(tmp_path: Path) -> None:
    folder = _write(tmp_path, "humaneval", HUMANEVAL_ROWS)
    canonical = {r["task_id"]: r["canonical_solution"] for r in HUMANEVAL_ROWS}
    report = evaluate("humaneval", model=_humaneval_model(canonical), data_dir=folder, cache="off")
    assert report.evaluation_report.metrics["CodeExecution"].mean == 1.0
    swapped = dict(zip(canonical, reversed(list(canonical.values())), strict=True))
    report = evaluate("humaneval", model=_humaneval_model(swapped), data_dir=folder, cache="off")
    assert report.evaluation_report.metrics["CodeExecution"].mean == 0.0


@pytest.mark.slow
def test_humaneval_hostile_completions_fail_and_the_run_completes(tmp_path: Path) -> None:
    folder = _write(tmp_path, "humaneval", HUMANEVAL_ROWS * 1)
    escape = tmp_path / "outside.txt"
    hostile = {
        "HumanEval/0": (
            f"    open({str(escape)!r}, 'w').write('x')\n"
            "    import os\n    while True:\n        os.fork()\n"
        ),
        "HumanEval/1": "    while True:\n        pass\n",
    }
    report = evaluate("humaneval", model=_humaneval_model(hostile), data_dir=folder, cache="off")
    assert [r.scores["CodeExecution"].value for r in report.records] == [0.0, 0.0]
    assert not escape.exists()


def test_every_catalog_preset_is_registered_and_pinned_or_says_why() -> None:
    for name in ("mmlu_pro", "gpqa_diamond", "arc_challenge", "aime24", "aime25", "humaneval"):
        preset = get_benchmark_preset(name)
        assert preset.revision is None or re.fullmatch(r"[0-9a-f]{40}", preset.revision)
        if preset.revision is None:
            assert "local copy" in preset.description
