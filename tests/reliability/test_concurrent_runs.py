"""Two ``pytest -n 2`` processes on one cache folder at once: no corruption, nothing lost."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from reliability_support import pytest_command, rows, subprocess_env, write_jsonl

from pytest_themis.storage import ExperimentStorage
from pytest_themis.testing import FaultPlan, OpenAIServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

N = 30
TEMPLATES = 4
PARALLEL = 4
#: Four cells (one per template), so ``-n 2`` spreads them over both workers of each run.
SWEEP = """
import json

import pytest

ROWS = [json.loads(line) for line in open("data.jsonl")]
PROMPTS = {f"t{k}": f"Variant {k}. {{question}}\\nEXPECTED: {{said}}" for k in range(TEMPLATES)}


@pytest.mark.themis(dataset=ROWS, prompts=PROMPTS, models="openai/fake-chat",
                    reference_field="gold", metrics=["exact_match"], extractor="gsm8k")
def test_sweep(themis_report):
    assert themis_report.total == len(ROWS)
    assert themis_report.errors == 0
"""


def _cache_entries(cache: Path) -> int:
    storage = ExperimentStorage(cache)
    try:
        keys = [k for k in storage.cache.iterkeys() if str(k).startswith("gen:")]
        assert all(storage.get(k) is not None for k in keys)  # every entry passes its checksum
        return len(keys)
    finally:
        storage.close()


def test_two_parallel_runs_share_one_cache(
    door: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    write_jsonl(door.path / "data.jsonl", rows(N))
    door.makepyfile(test_sweep=f"TEMPLATES = {TEMPLATES}\n" + SWEEP)
    total = N * TEMPLATES
    env = subprocess_env()
    with OpenAIServer(FaultPlan(latency=0.05)) as server:
        args = [
            "-n", "2", f"--themis-api-base={server.url}", "--themis-cache-dir=cache",
            f"--themis-max-parallel={PARALLEL}",
        ]  # fmt: skip
        procs = [
            subprocess.Popen(
                pytest_command(*args, f"--themis-manifest=run{i}.json"),
                cwd=door.path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for i in range(2)
        ]
        outputs = [proc.communicate(timeout=300)[0] for proc in procs]
        for proc, output in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, output
            assert f"{TEMPLATES} passed" in output
        stats = server.stats
        assert len(stats.requests_by_prompt) == total  # each (cell, row) has its own prompt
        duplicates = stats.request_count - total
        with capsys.disabled():
            print(
                f"\n[concurrent runs] {total} generations, {stats.request_count} requests, "
                f"{duplicates} duplicates, max in flight {stats.max_in_flight}"
            )
        # Only tasks in flight at the same moment in both runs can be asked twice.
        assert duplicates <= 2 * 2 * PARALLEL
        assert max(stats.requests_by_prompt.values()) <= 2

        # Nothing lost, nothing corrupt: every generation is stored and replays offline.
        assert _cache_entries(door.path / "cache") == total
        server.reset_stats()
        replay = door.runpytest(
            "-p", "no:cacheprovider", f"--themis-api-base={server.url}",
            "--themis-cache-dir=cache", "--themis-cache=replay", "--themis-manifest=replay.json",
        )  # fmt: skip
        replay.assert_outcomes(passed=TEMPLATES)
        assert server.stats.request_count == 0
