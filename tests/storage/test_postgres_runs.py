"""Whole runs on a PostgreSQL store: evaluate() through a restart, reruns, the pytest door."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from support.pg_server import PostgresServer, stored_generation_keys
from support.sweeps import SWEEP_RECORDS, demo_twice, level4_sweep, rerun_from_store

from pytest_themis import evaluate
from pytest_themis.testing.polling import wait_for

pytestmark = pytest.mark.timeout(300)


@pytest.mark.slow
def test_evaluate_survives_a_restart_and_a_rerun_sends_nothing(
    pg_server: PostgresServer, pg_url: str
) -> None:
    seen: dict[str, Any] = {}

    def restart_after_first_records() -> None:
        try:
            seen["before"] = wait_for(lambda: stored_generation_keys(pg_url), 120, "a record")
            pg_server.restart()
            seen["restarted"] = True
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            seen["error"] = exc

    restarter = threading.Thread(target=restart_after_first_records)
    restarter.start()
    # 50 rows, two at a time, 0.1 s each: about 2.5 s of generation to restart into
    report = evaluate(
        "demo", model="fake:fake-math-llm", storage=pg_url, max_parallel=2, latency=0.1
    )
    restarter.join(timeout=120)
    assert "error" not in seen, seen.get("error")
    assert seen.get("restarted")
    assert 0 < len(seen["before"]) < 50  # the restart came mid-run
    records = report.records
    assert len(records) == 50
    assert not [r for r in records if r.generation.error is not None]
    after = stored_generation_keys(pg_url)
    assert seen["before"] <= after  # nothing committed before the restart was lost
    assert len(after) == 50

    rerun_from_store(report, "demo", model="fake:fake-math-llm", storage=pg_url)


@pytest.mark.slow
def test_pytest_door_stores_in_postgres_and_reruns_from_it(
    pg_server: PostgresServer,
    pytester: pytest.Pytester,
) -> None:
    from support.pg_server import PASSWORD, PASSWORD_USER

    table = "t_pytest_door"
    pg_server.psql(f"DROP TABLE IF EXISTS {table}", database="themis")
    url = pg_server.url(user=PASSWORD_USER, password=PASSWORD) + f"?table={table}"
    demo_twice(pytester, url, PASSWORD)
    assert (
        pg_server.psql(f"SELECT count(*) FROM {table} WHERE key LIKE 'gen:%'", "themis") == "50\n"
    )
    assert not (pytester.path / ".themis_cache" / "cache.db").exists()  # nothing went to a folder


def test_level4_sweep_on_a_store_url(pg_url: str) -> None:
    # the URL, as evaluate() and the flag take it
    first, second = level4_sweep(pg_url), level4_sweep(pg_url)
    assert len(first.records) == len(second.records) == SWEEP_RECORDS
    assert sum(r.generation.cached for r in first.records) == 0
    assert sum(r.generation.cached for r in second.records) == SWEEP_RECORDS
    assert len(stored_generation_keys(pg_url)) == 80
    cache_info = first.manifest["settings"]["cache"]
    assert (cache_info["name"], cache_info["table"]) == ("PostgresStorage", pg_url.split("=")[-1])
