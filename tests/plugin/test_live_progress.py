"""Live progress reaches the captured terminal output (no -s) and is silent with -q -q."""

from __future__ import annotations

import re

import pytest
from plugin_support import base_args

pytestmark = pytest.mark.timeout(120)

SLOW_MODEL = """
import time

def answer(prompt):
    time.sleep(0.12)
    left, right = prompt.split("+")
    return str(int(left) + int(right))
"""

TEST_FILE = """
import pytest

ROWS = [{"id": f"r{i}", "q": f"{i}+1", "a": str(i + 1)} for i in range(16)]

@pytest.mark.themis(dataset=ROWS, prompts="{q}", models="python:slowmodel:answer",
                    reference_field="a", metrics=["exact_match"])
def test_slow(themis_report):
    print("output of the test body")
"""

PROGRESS = re.compile(r"^themis \S+: (\d+)/16 cached 0 errors 0 \| [\d.]+/s \| ETA \S+$")


@pytest.fixture
def slow_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(slowmodel=SLOW_MODEL, test_slow=TEST_FILE)
    pytester.syspathinsert()
    return pytester


def test_progress_lines_show_under_output_capture(slow_suite: pytest.Pytester) -> None:
    # 16 sequential requests of 0.12 s: about 2 s, beyond the 1 s before progress shows
    result = slow_suite.runpytest(*base_args(slow_suite), "--themis-max-parallel=1")
    result.assert_outcomes(passed=1)
    done = [int(m.group(1)) for line in result.outlines if (m := PROGRESS.match(line))]
    assert done and done[-1] == 16, result.outlines
    assert done == sorted(done) and done[0] < 16  # a line while running, then the final one
    assert "output of the test body" not in result.stdout.str()  # capture is still on


def test_progress_is_silent_with_double_quiet(slow_suite: pytest.Pytester) -> None:
    result = slow_suite.runpytest(*base_args(slow_suite), "--themis-max-parallel=1", "-q", "-q")
    assert result.ret == pytest.ExitCode.OK
    assert not [line for line in result.outlines if PROGRESS.match(line)]
    assert "/16 cached" not in result.stdout.str()
