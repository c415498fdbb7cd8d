"""The code sandbox: candidates that pass, fail, hang, fork, allocate or escape."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_themis.evaluation.code_sandbox import SandboxLimits, run_program, run_programs
from pytest_themis.evaluation.metrics.code_execution import CodeExecution, assemble_program

LIMITS = SandboxLimits(timeout=2.0, memory_mb=512)

PROBLEM = {
    "prompt": "from typing import List\n\n\ndef total(xs: List[int]) -> int:\n"
    '    """Sum of xs."""\n',
    "test": (
        "def check(candidate):\n    assert candidate([1, 2, 3]) == 6\n"
        "    assert candidate([]) == 0\n"
    ),
    "entry_point": "total",
}


def test_passing_and_failing_programs() -> None:
    assert run_program("assert sum([1, 2]) == 3\n", LIMITS).status == "passed"
    failed = run_program("assert 1 == 2\n", LIMITS)
    assert failed.status == "failed" and "AssertionError" in failed.output


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("infinite loop", "while True:\n    pass\n"),
        ("sleep", "import time\ntime.sleep(60)\n"),
        ("fork loop", "import os\nwhile True:\n    os.fork()\n"),
        ("huge allocation", "x = bytearray(50 * 2**30)\n"),
        ("growing allocation", "x = []\nwhile True:\n    x.append(' ' * 10**7)\n"),
        ("subprocess", "import subprocess\nsubprocess.run(['true'])\n"),
        ("network", "import socket\nsocket.create_connection(('127.0.0.1', 9))\n"),
    ],
)
def test_hostile_programs_fail_within_the_timeout(name: str, source: str) -> None:
    result = run_program(source, LIMITS)
    assert not result.passed, name
    assert result.duration < LIMITS.timeout + 3.0


def test_writing_outside_its_directory_fails_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    result = run_program(f"open({str(target)!r}, 'w').write('x')\n", LIMITS)
    assert not result.passed
    assert not target.exists()
    inside = run_program(
        "open('scratch.txt', 'w').write('ok')\nprint(open('scratch.txt').read())\n"
    )
    assert inside.passed and "ok" in inside.output


def test_the_program_sees_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-123")
    result = run_program("import os\nprint(dict(os.environ))\n", LIMITS)
    assert result.passed and "sk-canary" not in result.output


def test_canonical_solution_passes_and_a_swapped_one_fails() -> None:
    right = "    return sum(xs)\n"
    wrong = "    return len(xs)\n"
    metric = CodeExecution(timeout=2.0)
    scores = metric.score_batch([(right, PROBLEM), (wrong, PROBLEM)])
    assert [s.value for s in scores] == [1.0, 0.0]
    # A whole function (prompt's imports dropped by the model) also runs.
    whole = "def total(xs: List[int]) -> int:\n    return sum(xs)\n"
    assert metric.score_batch([(whole, PROBLEM)])[0].value == 1.0
    assert "check(total)" in assemble_program(right, PROBLEM)


def test_a_batch_keeps_its_order_and_survives_a_crash() -> None:
    sources = ["import sys\nsys.exit(3)\n", "pass\n", "raise SystemExit(0)\n", "1/0\n"]
    statuses = [r.status for r in run_programs(sources, LIMITS, workers=2)]
    assert statuses == ["failed", "passed", "passed", "failed"]
