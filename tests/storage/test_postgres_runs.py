"""Whole runs on a PostgreSQL store: evaluate() through a restart, reruns, the pytest door."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from support.pg_server import PostgresServer
from support.sweeps import SWEEP_RECORDS, demo_twice, level4_sweep

from pytest_themis import evaluate

pytestmark = pytest.mark.timeout(300)


def _connect(url: str) -> Any:
    import psycopg  # the pg_server fixture has checked that it is installed

    return psycopg.connect(url, autocommit=True)


def _stored_keys(url: str) -> set[str]:
    base, table = url.split("?table=")
    with _connect(base) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        if exists is None or exists[0] is None:
            return set()
        return {row[0] for row in conn.execute(f"SELECT key FROM {table} WHERE key LIKE 'gen:%'")}


def _poll(condition: Any, deadline: float) -> Any:
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.02)


@pytest.mark.slow
def test_evaluate_survives_a_restart_and_a_rerun_sends_nothing(
    pg_server: PostgresServer, pg_url: str
) -> None:
    seen: dict[str, Any] = {}

    def restart_after_first_records() -> None:
        try:
            seen["before"] = _poll(lambda: _stored_keys(pg_url), 120)
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
    after = _stored_keys(pg_url)
    assert seen["before"] <= after  # nothing committed before the restart was lost
    assert len(after) == 50

    rerun = evaluate("demo", model="fake:fake-math-llm", storage=pg_url)
    assert sum(r.generation.cached for r in rerun.records) == len(rerun.records) == 50
    assert [r.scores for r in rerun.records] == [r.scores for r in records]


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
    assert len(_stored_keys(pg_url)) == 80
    cache_info = first.manifest["settings"]["cache"]
    assert (cache_info["name"], cache_info["table"]) == ("PostgresStorage", pg_url.split("=")[-1])
