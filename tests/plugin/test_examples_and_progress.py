"""The shipped plugin examples pass offline; progress lines are formatted and throttled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.timeout(180)
def test_plugin_examples_pass_offline(tmp_path: Path) -> None:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(EXAMPLES), "-p", "no:cacheprovider", "-q",
         f"--themis-cache-dir={tmp_path / 'cache'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=170, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "13 passed" in done.stdout
    assert (tmp_path / "cache" / "manifest.json").is_file()


class _Terminal:
    def __init__(self, tty: bool) -> None:
        self.isatty = tty
        self.lines: list[str] = []
        self.rewrites: list[str] = []
        self.currentfspath = None

    def ensure_newline(self) -> None:
        pass

    def write_line(self, line: str) -> None:
        self.lines.append(line)

    def rewrite(self, line: str, erase: bool = False) -> None:
        self.rewrites.append(line)

    def write(self, text: str) -> None:
        self.lines.append(text)


def _event(done: int, total: int = 10, cached: int = 0, elapsed: float = 2.0) -> SimpleNamespace:
    return SimpleNamespace(done=done, total=total, cached=cached, errors=1, elapsed=elapsed)


def test_progress_line_reports_counts_rate_and_eta() -> None:
    from pytest_themis._pytest.progress import format_progress

    line = format_progress("demo[x]", _event(4, cached=2))
    assert line == "themis demo[x]: 4/10 cached 2 errors 1 | 2.0/s | ETA 6s"
    assert format_progress("c", _event(10)).endswith("ETA 0s")


def test_progress_rewrites_one_line_on_a_terminal() -> None:
    from pytest_themis._pytest.progress import CellProgress

    term = _Terminal(tty=True)
    progress = CellProgress(term, "cell", delay=0.0)
    for done in (1, 5, 10):
        progress(_event(done))
    assert [r.split(":")[1].split()[0] for r in term.rewrites] == ["1/10", "5/10", "10/10"]
    assert term.lines == ["\n"]  # the finished line is closed once


def test_progress_prints_periodic_lines_without_a_terminal() -> None:
    from pytest_themis._pytest.progress import CellProgress

    term = _Terminal(tty=False)
    progress = CellProgress(term, "cell", delay=0.0, interval=3600)
    for done in (1, 5, 9, 10):
        progress(_event(done))
    # first update, then nothing until the interval passes, then the final line
    assert [line.split(":")[1].split()[0] for line in term.lines] == ["1/10", "10/10"]


def test_progress_is_silent_for_fast_cells() -> None:
    from pytest_themis._pytest.progress import CellProgress

    term = _Terminal(tty=True)
    progress = CellProgress(term, "cell", delay=3600)
    progress(_event(10))
    assert term.rewrites == [] and term.lines == []
