"""SIGKILL a running ``pytest`` at five points; each rerun re-requests only unfinished work.

The five killed runs are separate ``pytest`` processes, run side by side, each against its own
server so its request count tells how far it got. The reruns and the uninterrupted reference
runs are in-process pytester runs (the killed process is the one that must be a real process).
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from reliability_support import (
    marker_test,
    prompt_of,
    pytest_command,
    read_json,
    rows,
    subprocess_env,
    write_jsonl,
)

from pytest_themis.experiment.manifest import strip_volatile
from pytest_themis.storage import ExperimentStorage
from pytest_themis.testing import FaultPlan, OpenAIServer, ServerStats

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

N = 100
PARALLEL = 4
FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)
#: Server latency while the runs are killed: at 90% the last requests still need three rounds.
KILL_LATENCY = 0.15


def _args(url: str, cache: str) -> list[str]:
    return [
        "-p", "no:cacheprovider", f"--themis-api-base={url}", f"--themis-cache-dir={cache}",
        f"--themis-manifest={cache}.json", "--themis-run-id=kill-test",
        f"--themis-max-parallel={PARALLEL}",
    ]  # fmt: skip


def _stored_rows(cache: Path) -> set[str]:
    """Row ids whose generation is in the cache (every entry must pass its checksum)."""
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


@dataclass
class _KilledRun:
    fraction: float
    server: OpenAIServer
    cache: str
    proc: subprocess.Popen[bytes] | None = None
    reached: bool = False
    stderr: str = ""
    stats: ServerStats = field(default_factory=ServerStats)

    def start(self, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            pytest_command(*_args(self.server.url, self.cache)),
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def kill_when_reached(self) -> None:
        assert self.proc is not None
        try:
            self.reached = self.server.wait_for_requests(int(self.fraction * N), timeout=240)
            self.proc.send_signal(signal.SIGKILL)
        finally:
            self.proc.kill()
            self.stderr = self.proc.communicate(timeout=60)[1].decode(errors="replace")
            self.stats = self.server.stats


def test_killed_pytest_resumes_without_repeating_finished_requests(
    door: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    data = rows(N)
    prompts = {r["id"]: prompt_of(r) for r in data}
    write_jsonl(door.path / "data.jsonl", data)
    door.makepyfile(test_kill=marker_test(["openai/fake-chat"], N))
    servers = [OpenAIServer(FaultPlan(latency=KILL_LATENCY)) for _ in FRACTIONS]
    runs = [
        _KilledRun(f, s, f"cache{int(f * 100)}") for f, s in zip(FRACTIONS, servers, strict=True)
    ]
    try:
        for server in servers:
            server.start()
        env = subprocess_env()
        started = time.perf_counter()
        for run in runs:
            run.start(door.path, env)
        killers = [threading.Thread(target=run.kill_when_reached) for run in runs]
        for killer in killers:
            killer.start()
        for killer in killers:
            killer.join()
        killed_after = time.perf_counter() - started

        lines = [_check_resume(door, run, prompts) for run in runs]
        with capsys.disabled():
            print(f"\n[kill/resume] {N} generations; five killed runs done in {killed_after:.1f}s")
            for line in lines:
                print("  " + line)
    finally:
        for run in runs:
            if run.proc is not None and run.proc.poll() is None:
                run.proc.kill()
        for server in servers:
            server.stop()


def _check_resume(door: pytest.Pytester, run: _KilledRun, prompts: dict[str, str]) -> str:
    label = f"killed at {run.fraction:.0%}"
    assert run.reached, f"{label}: never got there: {run.stderr[-2000:]}"
    assert run.proc is not None and run.proc.returncode == -signal.SIGKILL, label
    killed = run.stats
    assert killed.request_count < N, f"{label}: the run finished before the kill"

    stored = _stored_rows(door.path / run.cache)
    asked_before = set(killed.requests_by_prompt)
    assert 0 < len(stored) < N, label
    assert {prompts[r] for r in stored} <= asked_before, label
    # Only what was in flight at the kill is lost: at most PARALLEL requests, plus the records
    # that had come back but were not committed yet. A record frees its slot when it is handed
    # to the writer, so while one batch commits, up to PARALLEL more requests may start; with
    # KILL_LATENCY far above a commit, that is at most one more window.
    assert len(asked_before) - len(stored) <= 2 * PARALLEL, label

    server = run.server
    server.set_plan(FaultPlan())  # no latency needed from here on
    server.reset_stats()
    door.runpytest(*_args(server.url, run.cache)).assert_outcomes(passed=1)
    # Zero repeats: no prompt answered before the kill is asked again; every other once.
    expected = Counter({prompts[r]: 1 for r in prompts if r not in stored})
    assert server.stats.requests_by_prompt == expected, label

    # The resumed run's manifest equals an uninterrupted run's (same server, fresh cache).
    reference = run.cache + "-reference"
    door.runpytest(*_args(server.url, reference)).assert_outcomes(passed=1)
    assert _manifest(door, run.cache) == _manifest(door, reference), label
    return (
        f"{label}: {killed.request_count} requests before the kill, {len(stored)} stored, "
        f"rerun sent {sum(expected.values())}, repeats 0, manifest equal"
    )


def _manifest(door: pytest.Pytester, cache: str) -> Any:
    return strip_volatile(read_json(door.path / f"{cache}.json"))
