"""A rejected key fails only its own cell, at once; the key itself is never written anywhere."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from reliability_support import (
    CANARY_KEY,
    TEMPLATE,
    files_containing,
    marker_test,
    prompt_of,
    rows,
    run_pytest,
    subprocess_env,
    write_jsonl,
)

from pytest_themis import evaluate
from pytest_themis.generation.failfast import DEFAULT_THRESHOLD
from pytest_themis.testing import FaultPlan, OpenAIServer

pytestmark = pytest.mark.timeout(120)

N = 12
FAIL_FAST_AFTER = DEFAULT_THRESHOLD
LOCKED = "locked-model"


def test_rejected_credentials_fail_one_cell_without_retries(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data = rows(N)
    with OpenAIServer(FaultPlan(status_for_model={LOCKED: 401})) as server:
        started = time.perf_counter()
        report = evaluate(
            dataset=data,
            model=["openai/fake-chat", f"openai/{LOCKED}"],
            api_base=server.url,
            api_key=CANARY_KEY,
            prompt=TEMPLATE,
            reference_field="gold",
            metrics=["exact_match"],
            extractor="gsm8k",
            max_retries=5,
            storage=tmp_path / "cache",
        )
        elapsed = time.perf_counter() - started
        stats = server.stats

    cells = {cell.cell_id.split("-prompt")[0]: cell for cell in report.cells.values()}
    good, locked = cells["fake-chat"], cells[LOCKED]
    assert good.errors == 0 and good.total == N
    assert good.metrics["ExactMatch"].mean == pytest.approx(8 / 12)
    assert locked.errors == N
    # At most one request per task: a 401 is never retried. After FAIL_FAST_AFTER refusals
    # with no success the rest of the cell is not sent at all (the fail-fast rule).
    rejected = Counter(p for _, p, outcome in stats.arrivals if outcome == "status_401")
    assert FAIL_FAST_AFTER <= sum(rejected.values()) <= N and set(rejected.values()) == {1}
    assert set(rejected) <= {prompt_of(r) for r in data}
    assert elapsed < 30
    kinds = Counter()
    for record in locked.records:
        error = record.generation.error
        assert error is not None and error.type in ("AuthenticationError", "FailFastError")
        kinds[error.type] += 1
        assert record.generation.attempts == 1
        assert LOCKED in error.message and "credentials were rejected" in error.message
        assert CANARY_KEY not in error.message and "***" in error.message
    assert kinds["AuthenticationError"] == sum(rejected.values())
    # Nothing persisted or printed holds the key, though the server echoed it.
    assert CANARY_KEY not in json.dumps(report.manifest, default=str)
    assert files_containing(tmp_path / "cache", CANARY_KEY) == []
    out, err = capfd.readouterr()
    assert CANARY_KEY not in out + err


@pytest.mark.slow  # a pytest subprocess that imports litellm
def test_key_never_reaches_cache_manifest_output_or_junit(tmp_path: Path) -> None:
    n = 6
    write_jsonl(tmp_path / "data.jsonl", rows(n))
    (tmp_path / "test_secret.py").write_text(
        marker_test(["openai/fake-chat", f"openai/{LOCKED}"], n)
    )
    env = subprocess_env(OPENAI_API_KEY=CANARY_KEY)
    with OpenAIServer(FaultPlan(status_for_model={LOCKED: 401})) as server:
        done = run_pytest(
            tmp_path,
            "-rA",
            "-v",
            f"--themis-api-base={server.url}",
            "--themis-cache-dir=cache",
            "--themis-manifest=manifest.json",
            "--junitxml=junit.xml",
            env=env,
        )
        stats = server.stats
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "1 failed, 1 passed" in output
    assert "credentials were rejected" in output and LOCKED in output
    assert stats.outcome_counts["status_401"] == n  # the server did see (and echo) the key
    assert "Bearer ***" in output  # the echoed key was there, and redacted
    assert CANARY_KEY not in output
    for name in ("manifest.json", "junit.xml"):
        assert (tmp_path / name).is_file()
    assert files_containing(tmp_path, CANARY_KEY) == []
