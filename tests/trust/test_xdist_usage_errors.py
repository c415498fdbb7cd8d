"""Item 6 under pytest-xdist: a usage error found by the workers' pre-run checks ends the run
with exit 4 and the same one-line message as a serial run, and no request is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_themis.testing import OpenAIServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]  # starts xdist workers

TEST_FILE = """
import pytest

ROWS = [{"id": "a", "q": "2+2", "a": "4"}, {"id": "b", "q": "3+3"MISSING}]


@pytest.mark.themis(dataset=ROWS, prompts="{q}", models="openai/chat",
                    reference_field="a", metrics=["exact_match"])
def test_quality(themis_report):
    pass


def test_plain():
    pass
"""


def _prepare(path: Path, case: str) -> list[str]:
    """Write the test file (and whatever ``case`` breaks); the command-line flags of ``case``."""
    missing = "" if case == "row without reference" else ', "a": "6"'
    (path / "test_quality.py").write_text(TEST_FILE.replace("MISSING", missing))
    cache = path / "cache"
    if case == "damaged cache database":
        cache.mkdir()
        (cache / "cache.db").write_bytes(b"garbage, not sqlite" * 64)
    if case == "baseline is not a manifest":
        (path / "notes.json").write_text('{"hello": 1}')
    flags = {
        "unknown metric": ["--themis-fail-under=Accuracy=0.5"],
        "baseline is not a manifest": [f"--themis-baseline={path / 'notes.json'}"],
    }.get(case, [])
    if case == "unknown storage scheme":
        return ["--themis-storage=redis://u:pw@h/0"]
    return [f"--themis-cache-dir={cache}", *flags]


def _errors(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stderr.lines if line.startswith("ERROR:")]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        # One case per kind of check (gate names, rows, the cache folder, a store URL, the
        # baseline); the other forms of each are tested serially in test_gates_and_exit_codes.py
        # and tests/plugin/test_baseline.py — every case here starts two xdist workers.
        ("unknown metric", "*no metric 'Accuracy' in this evaluation; available: ExactMatch*"),
        ("row without reference", "*row 'b' has no reference field 'a'*"),
        ("damaged cache database", "*cache.db is damaged*"),
        ("unknown storage scheme", "*unsupported storage URL scheme 'redis://'*"),
        ("baseline is not a manifest", "*--themis-baseline*is not a themis manifest*"),
    ],
)
def test_xdist_usage_error_is_exit_4_with_the_serial_message(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, case: str, message: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    args = _prepare(pytester.path, case)
    with OpenAIServer() as server:
        common = ["-p", "no:cacheprovider", f"--themis-api-base={server.url}", *args]
        serial = pytester.runpytest_subprocess(*common, "-n", "0")
        parallel = pytester.runpytest_subprocess(*common, "-n", "2")
        sent = server.request_count
    assert serial.ret == 4, serial.stderr.str()
    assert parallel.ret == 4, parallel.stdout.str() + parallel.stderr.str()
    parallel.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert _errors(parallel) == _errors(serial)  # one line, the same as without xdist
    assert "INTERNALERROR" not in parallel.stdout.str() + parallel.stderr.str()
    assert sent == 0
