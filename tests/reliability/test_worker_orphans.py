"""Generation worker processes die with their parent: a SIGKILLed run sends nothing more."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_themis.testing import FaultPlan, OpenAIServer

CHILD = r"""
import os, sys
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
from pytest_themis.generation import pool
pool.prestart(2)
from pytest_themis import evaluate
rows = [{"id": i, "q": f"Question {i}", "gold": "x"} for i in range(400)]
evaluate(dataset=rows, model="openai/mock", api_base=sys.argv[1], prompt="{q}",
         reference_field="gold", metrics=["exact_match"], storage=sys.argv[2], max_parallel=8,
         client="litellm")  # worker processes serve litellm (the native client needs none)
"""


def _worker_pids() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"pytest_themis.generation._worker" in cmdline:
                pids.add(int(entry.name))
    return pids


@pytest.mark.slow  # starts a parent with worker processes that import litellm
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
@pytest.mark.timeout(120)
def test_killed_parent_takes_its_workers_with_it(tmp_path):
    before = _worker_pids()
    with OpenAIServer(FaultPlan(latency=0.2)) as server:
        child = subprocess.Popen([sys.executable, "-c", CHILD, server.url, str(tmp_path)])
        assert server.wait_for_requests(40, timeout=90), "the pool never started sending"
        ours = _worker_pids() - before
        assert ours, "the run did not use worker processes"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        at_kill = server.stats.request_count
        deadline = time.monotonic() + 30
        while _worker_pids() & ours and time.monotonic() < deadline:
            time.sleep(0.05)  # polling a condition with a deadline, not a fixed wait
        assert not _worker_pids() & ours, "worker processes outlived their parent"
        # Requests already on the wire at the kill may still land; nothing new is started.
        assert server.stats.request_count <= at_kill + 8
