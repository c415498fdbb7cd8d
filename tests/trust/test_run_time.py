"""The run's reported time leaves out the client library's import (issue: trust, item 11)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pytest_themis.testing import FaultPlan, OpenAIServer

CHILD = r"""
import json, os, sys, time
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
from pytest_themis import evaluate
from pytest_themis.core.setup_clock import setup_seconds
library = {"litellm": "litellm", "native": "aiohttp"}[sys.argv[2]]
assert library not in sys.modules
rows = [{"id": i, "q": f"Question {i}", "gold": "x"} for i in range(4)]
started = time.perf_counter()
report = evaluate(dataset=rows, model="openai/mock", api_base=sys.argv[1], prompt="{q}",
                  reference_field="gold", metrics=["exact_match"], storage=None, client=sys.argv[2])
assert library in sys.modules
wall = time.perf_counter() - started
cell = report.manifest["cells"][0]["execution"]
print(json.dumps({"duration": cell["duration_s"], "table": report.evaluation_report.duration,
                  "setup": setup_seconds(), "wall": wall, "n": len(report.records)}))
"""


@pytest.mark.slow  # imports litellm in a fresh interpreter
@pytest.mark.timeout(180)
@pytest.mark.parametrize(("client", "least"), [("litellm", 0.2), ("native", 0.01)])
def test_reported_time_excludes_the_client_import(tmp_path, client, least):
    with OpenAIServer(FaultPlan(latency=0.0)) as server:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, server.url, client],
            capture_output=True,
            text=True,
            timeout=170,
            cwd=tmp_path,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["n"] == 4
    # The import happened inside the run (the library was not loaded before) and took time …
    assert figures["setup"] > least
    # … which the reported duration leaves out: what is left is the four instant requests.
    assert figures["duration"] <= figures["wall"] - figures["setup"] + 0.05
    assert figures["table"] <= figures["wall"] - figures["setup"] + 0.05  # the table's "time"
    if client == "litellm":  # seconds of import against four instant requests
        assert figures["duration"] < figures["setup"] and figures["table"] < figures["setup"]
