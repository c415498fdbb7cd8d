"""SIGKILL a running ``pytest`` at five points; each rerun re-requests only unfinished work."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from reliability_support import (
    marker_test,
    prompt_of,
    pytest_command,
    read_json,
    rows,
    run_pytest,
    subprocess_env,
    write_jsonl,
)

from pytest_themis.experiment.manifest import strip_volatile
from pytest_themis.storage import ExperimentStorage
from pytest_themis.testing import FaultPlan, OpenAIServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

N = 120
PARALLEL = 4
FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)


def _args(url: str, cache: str) -> list[str]:
    return [
        f"--themis-api-base={url}", f"--themis-cache-dir={cache}",
        f"--themis-manifest={cache}.json", "--themis-run-id=kill-test",
        f"--themis-max-parallel={PARALLEL}",
    ]  # fmt: skip


def _stored_rows(cache: Path) -> set[str]:
    """Row ids whose generation is in the cache (read through the storage's own checks)."""
    storage = ExperimentStorage(cache)
    try:
        found = set()
        for key in list(storage.cache.iterkeys()):
            if str(key).startswith("gen:"):
                value = storage.get(key)
                assert value is not None, key
                found.add(value["task"].split("/", 1)[1].split("#", 1)[0])
        return found
    finally:
        storage.close()


def test_killed_pytest_resumes_without_repeating_finished_requests(tmp_path: Path) -> None:
    data = rows(N)
    prompts = {r["id"]: prompt_of(r) for r in data}
    write_jsonl(tmp_path / "data.jsonl", data)
    (tmp_path / "test_kill.py").write_text(marker_test(["openai/fake-chat"], N))
    env = subprocess_env()
    with OpenAIServer(FaultPlan(latency=0.05)) as server:
        done = run_pytest(tmp_path, *_args(server.url, "reference"), timeout=180, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert server.stats.request_count == N
        reference = strip_volatile(read_json(tmp_path / "reference.json"))

        for fraction in FRACTIONS:
            cache = f"cache{int(fraction * 100)}"
            server.reset_stats()
            proc = subprocess.Popen(
                pytest_command(*_args(server.url, cache)),
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                reached = server.wait_for_requests(int(fraction * N), timeout=180)
                proc.send_signal(signal.SIGKILL)
            finally:
                proc.kill()
                _, stderr = proc.communicate(timeout=60)
            assert reached, f"run never reached {fraction:.0%}: {stderr.decode()[-2000:]}"
            assert proc.returncode == -signal.SIGKILL
            killed = server.stats
            assert killed.request_count < N, "the run finished before it was killed"

            stored = _stored_rows(tmp_path / cache)
            assert 0 < len(stored) < N
            # Only requests still in flight at the kill are lost.
            asked_before = set(killed.requests_by_prompt)
            assert {prompts[r] for r in stored} <= asked_before
            assert len(asked_before) - len(stored) <= PARALLEL

            server.reset_stats()
            done = run_pytest(tmp_path, *_args(server.url, cache), timeout=180, env=env)
            assert done.returncode == 0, done.stdout + done.stderr
            resumed = server.stats.requests_by_prompt
            # Zero repeats: every finished prompt is absent, every other prompt asked once.
            assert resumed == Counter({prompts[r]: 1 for r in prompts if r not in stored})
            final = strip_volatile(read_json(tmp_path / f"{cache}.json"))
            assert final == reference, fraction
