"""SIGKILL the driver mid-run: the rerun resumes from the shared PostgreSQL store.

The driver is a subprocess running ``evaluate()`` against an OpenAI-compatible test server with
latency; it is killed (with its process group) once some records are stored. The rerun against
the same store completes every row and re-requests at most two windows (2 x max_parallel) of the
generations the killed run had already asked for.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter

import pytest
from support.pg_server import pg_server, pg_url, stored_generation_keys  # noqa: F401

from pytest_themis import evaluate
from pytest_themis.testing.openai_server import FaultPlan, OpenAIServer
from pytest_themis.testing.polling import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MAX_PARALLEL = 4
ROWS = 50

_DRIVER = textwrap.dedent(
    """
    import sys
    from pytest_themis import evaluate

    evaluate("demo", model="openai/kill-model", api_base=sys.argv[1], storage=sys.argv[2],
             max_parallel={max_parallel})
    """
).format(max_parallel=MAX_PARALLEL)


def test_sigkilled_driver_resumes_from_the_store_repeating_at_most_two_windows(
    pg_url: str,  # noqa: F811
) -> None:
    env = dict(os.environ, OPENAI_API_KEY="sk-test-not-a-secret")
    with OpenAIServer(FaultPlan(latency=0.25)) as server:
        driver = subprocess.Popen(
            [sys.executable, "-c", _DRIVER, server.url, pg_url],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            stored = wait_for(
                lambda: len(stored_generation_keys(pg_url)) >= 8, 120, "8 records stored"
            )
        finally:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait(timeout=30)
        assert stored and driver.returncode == -signal.SIGKILL
        before_kill = stored_generation_keys(pg_url)
        assert 8 <= len(before_kill) < ROWS  # killed mid-run
        asked_before = Counter(server.stats.requests_by_prompt)

        rerun = evaluate(
            "demo",
            model="openai/kill-model",
            api_base=server.url,
            storage=pg_url,
            max_parallel=MAX_PARALLEL,
            api_key="sk-test-not-a-secret",
        )
        asked_after = Counter(server.stats.requests_by_prompt) - asked_before

    assert len(rerun.records) == ROWS
    assert not [r for r in rerun.records if r.generation.error is not None]
    assert sum(r.generation.cached for r in rerun.records) >= len(before_kill)
    repeated = [prompt for prompt in asked_after if prompt in asked_before]
    assert len(repeated) <= 2 * MAX_PARALLEL, len(repeated)
    after = stored_generation_keys(pg_url)
    assert len(after) == ROWS and before_kill <= after
