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

#: Seconds each request of the slow cell takes. Until the runner cancels in-flight requests on
#: Ctrl-C, a run waits this long after SIGINT, so it stays short here.
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


def _interrupt_run(tmp_path: Path) -> tuple[int, str, dict[str, Any], float]:
    (tmp_path / "test_slow.py").write_text(TEST_FILE)
    with OpenAIServer() as server:
        server.set_plan(FaultPlan(latency=LATENCY))
        env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", OPENAI_API_KEY="sk-test")
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_slow.py",
                f"--themis-cache-dir={tmp_path / 'cache'}", f"--themis-api-base={server.url}",
            ],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            assert server.wait_for_requests(1, timeout=120), "the slow cell never started"
            sent = time.perf_counter()
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
            stopped = time.perf_counter() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    return proc.returncode, out, manifest, stopped


def test_ctrl_c_prints_the_partial_table_and_writes_an_interrupted_manifest(
    tmp_path: Path,
) -> None:
    code, out, manifest, _ = _interrupt_run(tmp_path)
    assert code == 2, out  # pytest's "interrupted" exit code
    assert "fake-math-llm-prompt-t0" in out and "ExactMatch" in out  # the finished cell's row
    assert "themis: interrupted" in out
    assert manifest["interrupted"] is True
    assert [c["cell_id"] for c in manifest["cells"]] == ["fake-math-llm-prompt-t0"]


# The native client (the default for this OpenAI-compatible model) drops its in-flight requests
# at once; through litellm the bound is still expected to fail. Strict: once it passes, remove
# the marker.
@pytest.mark.parametrize(
    "client",
    [
        "native",
        pytest.param(
            "litellm",
            marks=pytest.mark.xfail(
                strict=True, reason="in-flight litellm requests are not cancelled on Ctrl-C yet"
            ),
        ),
    ],
)
def test_ctrl_c_stops_within_one_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: str
) -> None:
    monkeypatch.setenv("THEMIS_CLIENT", client)  # the child pytest inherits it
    code, out, _, stopped = _interrupt_run(tmp_path)
    assert code == 2, out
    assert stopped < 1.0, f"took {stopped:.1f}s to stop after SIGINT"
