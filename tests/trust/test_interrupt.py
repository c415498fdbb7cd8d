"""Item 10 and exit code 2: Ctrl-C prints the partial table and writes a manifest marked
``interrupted``, against a slow OpenAI-compatible server, in a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_themis.testing import FaultPlan, OpenAIServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

#: Seconds each request of the slow cell takes: far longer than the 1 s a Ctrl-C may take, so a
#: request that is not cancelled shows.
LATENCY = 4.0

TEST_FILE = """
import pytest

ROWS = [{"id": f"r{i}", "q": f"{i}+{i}", "a": str(2 * i)} for i in range(8)]


@pytest.mark.themis(dataset=ROWS, prompts="{q}", models="fake:fake-math-llm",
                    reference_field="a", metrics=["exact_match"])
def test_a_fast(themis_report):
    pass


@pytest.mark.themis(dataset=ROWS, prompts="{q}", models="openai/slow-chat",
                    reference_field="a", metrics=["exact_match"])
def test_b_slow(themis_report):
    pass
"""


def _pytest(tmp_path: Path, server: OpenAIServer, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", OPENAI_API_KEY="sk-test")
    return subprocess.Popen(
        [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_slow.py",
            f"--themis-cache-dir={tmp_path / 'cache'}", f"--themis-api-base={server.url}", *args,
        ],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=_default_sigint,
    )  # fmt: skip


def _default_sigint() -> None:
    """The child takes Ctrl-C even when this suite runs with SIGINT ignored (a background job)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _manifest(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "cache" / "manifest.json").read_text())


def _interrupt(proc: subprocess.Popen[str]) -> tuple[str, float]:
    """Send SIGINT; the output and the seconds until the process ended."""
    try:
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        return out, time.perf_counter() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _interrupt_run(tmp_path: Path) -> tuple[int, str, dict[str, Any], float]:
    (tmp_path / "test_slow.py").write_text(TEST_FILE)
    with OpenAIServer() as server:
        server.set_plan(FaultPlan(latency=LATENCY))
        proc = _pytest(tmp_path, server)
        if not server.wait_for_requests(1, timeout=120):
            _interrupt(proc)
            pytest.fail("the slow cell never started")
        out, stopped = _interrupt(proc)
    return proc.returncode, out, _manifest(tmp_path), stopped


def test_ctrl_c_prints_the_partial_table_and_writes_an_interrupted_manifest(
    tmp_path: Path,
) -> None:
    code, out, manifest, _ = _interrupt_run(tmp_path)
    assert code == 2, out  # pytest's "interrupted" exit code
    assert "fake-math-llm-prompt-t0" in out and "ExactMatch" in out  # the finished cell's row
    assert "themis: interrupted" in out
    assert manifest["interrupted"] is True
    assert [c["cell_id"] for c in manifest["cells"]] == ["fake-math-llm-prompt-t0"]


@pytest.mark.parametrize("client", ["native", "litellm"])
def test_ctrl_c_stops_within_one_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: str
) -> None:
    """One request at a time: the first answer quickly, then one hangs for LATENCY seconds and
    gets Ctrl-C. The run ends within 1 s, and a rerun finds the answers it had in the cache."""
    monkeypatch.setenv("THEMIS_CLIENT", client)  # the child pytest inherits it
    (tmp_path / "test_slow.py").write_text(TEST_FILE)
    with OpenAIServer() as server:
        server.set_plan(FaultPlan(latency=0.5))
        proc = _pytest(tmp_path, server, "--themis-max-parallel=1")
        # The third request arriving means the first two were answered (one at a time).
        started = server.wait_for_requests(3, timeout=120)
        server.set_plan(FaultPlan(latency=LATENCY))
        if not (started and server.wait_for_requests(4, timeout=30)):
            _interrupt(proc)
            pytest.fail("the slow cell never got to its fourth request")
        out, stopped = _interrupt(proc)
        assert proc.returncode == 2, out
        assert stopped < 1.0, f"took {stopped:.1f}s to stop after SIGINT"
        assert "themis: interrupted" in out and _manifest(tmp_path)["interrupted"] is True

        server.set_plan(FaultPlan())
        rerun = _pytest(tmp_path, server)
        out, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, out
    cached = {c["cell_id"]: c["execution"]["cached"] for c in _manifest(tmp_path)["cells"]}
    assert cached["fake-math-llm-prompt-t0"] == 8  # the cell that finished before Ctrl-C
    assert cached["slow-chat-prompt-t0"] >= 2  # the answers the slow cell had before Ctrl-C
