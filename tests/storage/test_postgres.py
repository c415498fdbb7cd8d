"""PostgresStorage against a real PostgreSQL server: contract, checksums, concurrency, restarts."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from support.pg_server import PostgresServer

from pytest_themis.storage import CacheIntegrityWarning, decode_value
from pytest_themis.storage.postgres import PostgresStorage

pytestmark = pytest.mark.timeout(180)


def _connect(url: str) -> Any:
    import psycopg  # the pg_server fixture has checked that it is installed

    return psycopg.connect(url, autocommit=True)


def _table(url: str) -> str:
    return url.rsplit("table=", 1)[1]


def _raw_rows(url: str) -> dict[str, bytes]:
    base, table = url.split("?table=")
    with _connect(base) as conn:
        return {k: bytes(v) for k, v in conn.execute(f"SELECT key, value FROM {table}").fetchall()}


def test_round_trip_keeps_the_checksummed_format(pg_url: str) -> None:
    store = PostgresStorage(pg_url).open()
    value = {"text": "naïve ✓", "usage": [3, 4], "cost": None}
    store.set("gen:one", value)
    assert store.get("gen:one") == value
    assert store.get("gen:missing") is None
    raw = _raw_rows(pg_url)["gen:one"]
    assert raw.startswith(b"TH1:") and decode_value(raw) == value
    store.set("gen:one", {"text": "second"})  # last writer wins
    assert store.get("gen:one") == {"text": "second"}
    store.delete("gen:one")
    assert store.get("gen:one") is None
    store.close()


def test_get_many_set_many_and_keys(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pytest_themis.storage.postgres._CHUNK", 1000)  # several queries
    store = PostgresStorage(pg_url)
    items = [(f"gen:{i:05d}", {"text": str(i)}) for i in range(4500)]
    store.set_many(items + [("gen:00007", {"text": "later"})])  # a repeated key: the last wins
    store.set("run:abc", {"cells": []})
    wanted = [f"gen:{i:05d}" for i in range(0, 4600, 3)] + ["gen:00007", "gen:00007"]
    found = store.get_many(wanted)
    expected = {k: {"text": str(int(k[4:]))} for k in wanted if int(k[4:]) < 4500}
    expected["gen:00007"] = {"text": "later"}
    assert found == expected
    assert store.get_many([]) == {}
    assert list(store.keys("run:")) == ["run:abc"]
    assert len(list(store.keys("gen:"))) == 4500
    assert sorted(store.keys("gen:0000")) == [f"gen:{i:05d}" for i in range(10)]
    # LIKE wildcards in a prefix are literal characters
    store.set("a_b", {"text": "x"})
    store.set("axb", {"text": "y"})
    assert list(store.keys("a_")) == ["a_b"]
    store.close()


def test_table_name_from_the_url_or_argument(pg_server: PostgresServer, pg_url: str) -> None:
    other = _table(pg_url) + "_arg"
    pg_server.psql(f"DROP TABLE IF EXISTS {other}", database="themis")
    store = PostgresStorage(pg_server.url(), table=other)
    store.set("k", {"v": 1})
    assert pg_server.psql(f"SELECT count(*) FROM {other}", database="themis").strip() == "1"
    assert store.describe()["table"] == other
    assert PostgresStorage(pg_url, table="ignored").table == _table(pg_url)
    store.close()


def test_garbled_entry_warns_is_dropped_and_can_be_rewritten(pg_url: str) -> None:
    store = PostgresStorage(pg_url)
    store.set_many([("gen:good", {"text": "ok"}), ("gen:bad", {"text": "soon torn"})])
    base, table = pg_url.split("?table=")
    with _connect(base) as conn:
        conn.execute(
            f"UPDATE {table} SET value = substring(value from 1 for 40) WHERE key = 'gen:bad'"
        )
    with pytest.warns(CacheIntegrityWarning, match="gen:bad.*regenerated"):
        assert store.get_many(["gen:good", "gen:bad"]) == {"gen:good": {"text": "ok"}}
    assert "gen:bad" not in _raw_rows(pg_url)  # deleted, so the caller regenerates it
    store.set("gen:bad", {"text": "regenerated"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.get("gen:bad") == {"text": "regenerated"}
    store.close()


def test_password_never_shown(pg_server: PostgresServer) -> None:
    from support.pg_server import PASSWORD, PASSWORD_USER

    url = pg_server.url(user=PASSWORD_USER, password=PASSWORD) + "?table=t_pw"
    store = PostgresStorage(url).open()
    store.set("k", {"v": 1})
    shown = [repr(store), str(store.describe()), store.url]
    assert all(PASSWORD not in text for text in shown), shown
    assert f"{PASSWORD_USER}:***@" in repr(store)
    store.close()


def test_pickled_copy_reconnects_and_shares_the_data(pg_url: str) -> None:
    store = PostgresStorage(pg_url)
    store.set("k", {"v": 1})
    copy = pickle.loads(pickle.dumps(store))
    assert copy._conn is None
    assert copy.get("k") == {"v": 1}
    copy.set("k2", {"v": 2})
    assert store.get("k2") == {"v": 2}
    store.close()
    copy.close()


def test_threads_share_one_instance(pg_url: str) -> None:
    store = PostgresStorage(pg_url)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(40):
                key = f"gen:{n}:{i}"
                store.set_many([(key, {"n": n, "i": i}), (f"gen:shared:{i}", {"n": n})])
                assert store.get(key) == {"n": n, "i": i}
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(list(store.keys("gen:"))) == 6 * 40 + 40
    store.close()


WRITER = """
import sys, time
from pathlib import Path
from pytest_themis.storage.postgres import PostgresStorage

url, writer, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
store = PostgresStorage(url).open()
deadline = time.monotonic() + 60
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("no start signal")
    time.sleep(0.005)
for batch in range(30):
    # overlapping keys, each batch in a different order per writer
    keys = [f"gen:{k:04d}" for k in range(batch * 20, batch * 20 + 300)]
    if writer % 2:
        keys.reverse()
    store.set_many((k, {"writer": writer, "batch": batch, "pad": "x" * (50 + writer * 97)})
                   for k in keys)
store.close()
"""


def test_concurrent_writer_processes_leave_every_entry_intact(pg_url: str, tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    go = tmp_path / "go"
    PostgresStorage(pg_url).open().close()  # the table exists before the race
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), pg_url, str(n), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(2)
    ]
    go.touch()
    outputs = [p.communicate(timeout=150) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    rows = _raw_rows(pg_url)
    assert len(rows) == 29 * 20 + 300
    for key, raw in rows.items():
        value = decode_value(raw)
        assert value is not None, f"{key} is torn"
        assert value["pad"] == "x" * (50 + value["writer"] * 97)
    reader = PostgresStorage(pg_url)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(reader.get_many(sorted(rows))) == len(rows)
    reader.close()


def test_two_processes_creating_the_table_at_once(pg_url: str, tmp_path: Path) -> None:
    script = tmp_path / "create.py"
    script.write_text(
        "import sys, time\nfrom pathlib import Path\n"
        "from pytest_themis.storage.postgres import PostgresStorage\n"
        "go = Path(sys.argv[2])\n"
        "deadline = time.monotonic() + 60\n"
        "while not go.exists() and time.monotonic() < deadline:\n    time.sleep(0.002)\n"
        "PostgresStorage(sys.argv[1]).set('k' + sys.argv[3], {'v': 1})\n"
    )
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), pg_url, str(go), str(n)], stderr=subprocess.PIPE
        )
        for n in range(3)
    ]
    go.touch()
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], results
    assert sorted(_raw_rows(pg_url)) == ["k0", "k1", "k2"]


def test_survives_a_server_restart_without_losing_committed_entries(
    pg_server: PostgresServer, pg_url: str
) -> None:
    store = PostgresStorage(pg_url)
    store.set_many([(f"gen:{i}", {"i": i}) for i in range(100)])
    pg_server.restart()
    # the old connection is dead; the next operations reconnect and retry
    assert store.get("gen:7") == {"i": 7}
    store.set("gen:after", {"i": -1})
    assert len(store.get_many([f"gen:{i}" for i in range(100)])) == 100
    # an operation issued while the server is down waits for it to come back
    pg_server.stop("immediate")
    restarter = threading.Timer(1.0, pg_server.start)
    restarter.start()
    started = time.monotonic()
    store.set("gen:during", {"i": -2})
    restarter.join()
    assert time.monotonic() - started >= 0.5
    assert store.get("gen:during") == {"i": -2}
    assert len(list(store.keys("gen:"))) == 102
    store.close()


def test_gives_up_after_the_reconnect_deadline(pg_server: PostgresServer, pg_url: str) -> None:
    from pytest_themis.storage.postgres import PostgresStorageError

    store = PostgresStorage(pg_url, reconnect_timeout=0.5)
    store.set("k", {"v": 1})
    pg_server.stop("immediate")
    try:
        with pytest.raises(PostgresStorageError, match=r"unreachable for 0.5 s.*entries are kept"):
            store.get("k")
    finally:
        pg_server.start()
    assert store.get("k") == {"v": 1}
    store.close()
