"""PostgreSQL storage: one table keyed by the cache key, values in the embedded store's format.

Needs the ``postgres`` extra (``pip install "pytest-themis[postgres]"``, psycopg 3).
"""

from __future__ import annotations

import functools
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..backends.storage import StorageBackend
from ..errors import ConfigurationError, ThemisError
from . import CacheIntegrityWarning, decode_value, encode_value
from .urls import redact_url

__all__ = ["PostgresStorage", "PostgresStorageError"]

T = TypeVar("T")

PIP_LINE = 'pip install "pytest-themis[postgres]"'
SCHEMES = ("postgresql", "postgres")
_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,62}"
_TABLE_RE = re.compile(rf"^{_NAME}(\.{_NAME})?$")
#: Keys per statement in get_many.
_CHUNK = 10_000
#: The per-connection temporary table set_many stages its rows in.
STAGING = "themis_staging_rows"


class PostgresStorageError(ThemisError):
    """The PostgreSQL server stayed unreachable for longer than the reconnect deadline."""


def _import_psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigurationError(
            f"PostgreSQL storage needs psycopg 3, which is not installed; run: {PIP_LINE}"
        ) from None
    return psycopg


class PostgresStorage(StorageBackend):
    """Generations and run records in one PostgreSQL table (``key text`` → ``value bytea``).

    ``url`` is a libpq URL (``postgresql://user:password@host:port/database``; a ``table=NAME``
    query parameter names the table, overriding ``table``). The table is created on first use.
    Values keep the embedded store's checksummed format; an entry failing its check is reported
    with :class:`CacheIntegrityWarning`, deleted and regenerated. ``set_many`` writes a batch in
    one transaction (``COPY`` then one upsert in key order, so concurrent writers never
    deadlock). An operation that loses its connection (server restart, failover) reconnects and
    retries for up to ``reconnect_timeout`` seconds, then raises :class:`PostgresStorageError`.
    One connection per instance, guarded by a lock (thread-safe); pickling drops the connection.
    Call :meth:`open` to connect (and create the table) before a run: a bad URL, password, host
    or database is then one :class:`ConfigurationError` line.
    """

    def __init__(
        self,
        url: str,
        table: str = "themis_cache",
        *,
        connect_timeout: float = 10.0,
        reconnect_timeout: float = 60.0,
    ) -> None:
        self._psycopg = _import_psycopg()
        self.conninfo, url_table = _split_url(url)
        self.url = redact_url(self.conninfo)
        self.table = url_table or table
        if not _TABLE_RE.match(self.table) or self.table.rsplit(".", 1)[-1] == STAGING:
            raise ConfigurationError(
                f"PostgreSQL table name {self.table!r} is not a plain identifier; "
                "use letters, digits and underscores (optionally schema.table)"
            )
        if connect_timeout <= 0 or reconnect_timeout < 0:
            raise ConfigurationError(
                "PostgresStorage connect_timeout must be > 0 and reconnect_timeout >= 0"
            )
        self.connect_timeout = connect_timeout
        self.reconnect_timeout = reconnect_timeout
        self._password = urlsplit(self.conninfo).password or ""
        self._lock = threading.RLock()
        self._conn: Any = None
        self._table_ready = False
        self._staged = False
        self._sql = _Statements(self.table)

    # -- connection -------------------------------------------------------------------------------

    def open(self) -> PostgresStorage:
        """Connect and create the table now; a failure is one :class:`ConfigurationError` line."""
        psycopg = self._psycopg
        with self._lock:
            try:
                self._connection()
            except psycopg.Error as exc:
                self._drop()
                raise self._explain(exc) from None
        return self

    def _connection(self) -> Any:
        conn = self._conn
        if conn is None or conn.closed:
            conn = self._psycopg.connect(
                self.conninfo,
                autocommit=True,
                connect_timeout=max(1, round(self.connect_timeout)),
                application_name="pytest-themis",
            )
            self._conn = conn
        if not self._table_ready:
            self._create_table(conn)
            self._table_ready = True
        return conn

    def _create_table(self, conn: Any) -> None:
        sql = self._sql
        if conn.execute(sql.exists, (sql.table,)).fetchone()[0] is not None:
            return
        # CREATE TABLE IF NOT EXISTS alone can fail when two processes race (duplicate pg_type
        # row); an advisory lock on the table name serialises the creators.
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("themis:" + self.table,))
            conn.execute(sql.create)

    def _drop(self) -> None:
        self._staged = self._table_ready = False  # a new connection checks both again
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; drop it
                pass

    def _run(self, operation: Callable[[Any], T]) -> T:
        """Run ``operation(connection)``, reconnecting and retrying while the server is away."""
        psycopg = self._psycopg
        deadline: float | None = None
        delay = 0.05
        while True:
            with self._lock:
                try:
                    return operation(self._connection())
                except psycopg.OperationalError as exc:
                    self._drop()
                    if not _retryable(exc):
                        raise self._explain(exc) from None
                    last = exc
                except psycopg.Error as exc:
                    self._drop()
                    raise self._explain(exc) from None
            now = time.monotonic()
            deadline = deadline if deadline is not None else now + self.reconnect_timeout
            if now >= deadline:
                raise PostgresStorageError(
                    f"PostgreSQL at {self.url} unreachable for {self.reconnect_timeout:g} s "
                    f"({self._first_line(last)}); check the server, then rerun (stored entries "
                    "are kept)"
                ) from None
            time.sleep(min(delay, max(0.0, deadline - now)))
            delay = min(delay * 2, 1.0)

    # -- the contract -----------------------------------------------------------------------------

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._run(lambda conn: conn.execute(self._sql.get, (key,)).fetchone())
        if row is None:
            return None
        return self._decode(key, row[0])

    def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        wanted = list(dict.fromkeys(keys))

        def fetch(conn: Any, chunk: list[str]) -> list[tuple[str, bytes]]:
            return list(conn.execute(self._sql.get_many, (chunk,), binary=True).fetchall())

        rows: list[tuple[str, bytes]] = []
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            rows.extend(self._run(functools.partial(fetch, chunk=chunk)))
        found: dict[str, dict[str, Any]] = {}
        for key, data in rows:
            value = self._decode(key, data)
            if value is not None:
                found[key] = value
        return found

    def set(self, key: str, value: dict[str, Any]) -> None:
        self.set_many([(key, value)])

    def set_many(self, items: Iterable[tuple[str, dict[str, Any]]]) -> None:
        latest = {key: encode_value(value) for key, value in items}  # last value per key wins
        if not latest:
            return
        sql = self._sql

        def write(conn: Any) -> None:
            # COPY into a per-connection staging table, then one upsert in key order (one lock
            # order for every writer: no deadlocks); 2-4x faster than one unnest() upsert or
            # executemany in benchmarks/bench_postgres.py.
            with conn.transaction(), conn.cursor() as cur:
                if not self._staged:
                    cur.execute(sql.staging)
                    self._staged = True
                with cur.copy(sql.copy) as copy:
                    copy.set_types(["text", "bytea"])
                    for row in latest.items():
                        copy.write_row(row)
                cur.execute(sql.merge)

        self._run(write)

    def keys(self, prefix: str = "") -> Iterator[str]:
        pattern = re.sub(r"([\\%_])", r"\\\1", prefix) + "%"
        rows = self._run(lambda conn: conn.execute(self._sql.keys, (pattern,)).fetchall())
        return iter([row[0] for row in rows])

    def delete(self, key: str) -> None:
        self._run(lambda conn: conn.execute(self._sql.delete, (key,)))

    def close(self) -> None:
        with self._lock:
            self._drop()

    def describe(self) -> dict[str, Any]:
        return {
            "name": type(self).__name__,
            "engine": "postgresql",
            "url": self.url,
            "table": self.table,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, table={self.table!r})"

    # -- pickling: ship the settings, not the connection -----------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in ("_psycopg", "_lock", "_conn"):
            state.pop(name)
        state["_table_ready"] = state["_staged"] = False
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._psycopg = _import_psycopg()
        self._lock = threading.RLock()
        self._conn = None

    # -- helpers ----------------------------------------------------------------------------------

    def _decode(self, key: str, data: Any) -> dict[str, Any] | None:
        value = decode_value(bytes(data) if isinstance(data, memoryview) else data)
        if value is None:
            warnings.warn(
                f"cache entry {key[:16]}… in {self.url} (table {self.table}) failed its integrity "
                "check; it will be regenerated",
                CacheIntegrityWarning,
                stacklevel=3,
            )
            # Only the bad bytes: a concurrent writer's intact value is left alone.
            self._run(lambda conn: conn.execute(self._sql.delete_bad, (key, data), binary=True))
        return value

    def _first_line(self, exc: BaseException) -> str:
        text = " ".join(str(exc).split()) or type(exc).__name__
        if self._password:
            text = text.replace(self._password, "***")
        return text

    def _explain(self, exc: BaseException) -> ConfigurationError:
        """One line: what failed, the URL without its password, and the fix."""
        text = self._first_line(exc)
        lower = text.lower()
        parts = urlsplit(self.conninfo)
        user = parts.username or "(default user)"
        database = parts.path.lstrip("/") or "(default database)"
        where = f"PostgreSQL at {self.url}"
        if "password authentication failed" in lower or "no password supplied" in lower:
            fix = (
                f"{where} rejected the password of user {user!r}; fix the user/password in the "
                "storage URL (or PGPASSWORD / ~/.pgpass)"
            )
        elif f'database "{database}" does not exist' in lower:
            fix = (
                f"{where}: database {database!r} does not exist; create it (createdb {database}) "
                "or fix the database name in the storage URL"
            )
        elif "role" in lower and "does not exist" in lower:
            fix = f"{where}: user {user!r} does not exist; create it or fix the user in the URL"
        elif "failed to resolve host" in lower or "could not translate host" in lower:
            fix = f"cannot resolve the host of {where}; fix the host in the storage URL"
        elif "connection refused" in lower or "timeout expired" in lower or "timed out" in lower:
            fix = (
                f"cannot reach {where} ({_reason(lower)}); start the server or fix the host/port "
                "in the storage URL"
            )
        elif "permission denied" in lower:
            fix = (
                f"{where}: permission denied on table {self.table!r}; grant the user CREATE on "
                "the schema (or create the table) and SELECT/INSERT/UPDATE/DELETE on it"
            )
        else:
            fix = f"{where} failed: {text}; check the storage URL and the server"
        return ConfigurationError(fix)


def _reason(lower: str) -> str:
    return "connection refused" if "refused" in lower else "connection timed out"


def _retryable(exc: BaseException) -> bool:
    """False for connection errors a retry cannot fix (credentials, names)."""
    lower = str(exc).lower()
    permanent = (
        "password authentication failed",
        "no password supplied",
        "does not exist",
        "no pg_hba.conf entry",
        "failed to resolve host",
        "could not translate host",
        "invalid connection option",
    )
    return not any(text in lower for text in permanent)


def _split_url(url: str) -> tuple[str, str | None]:
    """The libpq URL without themis' own ``table`` parameter, and that parameter."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(
            "PostgresStorage needs a URL such as postgresql://user:password@host:5432/database"
        )
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigurationError(
            f"bad PostgreSQL URL {redact_url(url)}: {exc}; expected "
            "postgresql://user:password@host:5432/database"
        ) from None
    if parts.scheme not in SCHEMES:
        raise ConfigurationError(
            f"bad PostgreSQL URL {redact_url(url)}: the scheme must be postgresql:// or postgres://"
        )
    table = None
    query = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "table":
            table = value
        else:
            query.append((name, value))
    conninfo = urlunsplit(parts._replace(query=urlencode(query)))
    psycopg = _import_psycopg()
    try:
        psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        raise ConfigurationError(
            f"bad PostgreSQL URL {redact_url(url)}: {reason}; expected "
            "postgresql://user:password@host:5432/database[?table=NAME]"
        ) from None
    return conninfo, table


class _Statements:
    """The SQL of one table as plain strings (psycopg caches their parsing; a composed query
    would be rendered again on every call). The name was checked against ``_TABLE_RE`` (no
    quote characters), so double-quoting each part is safe."""

    def __init__(self, table: str) -> None:
        name = ".".join(f'"{part}"' for part in table.split("."))
        self.table = name
        self.exists = "SELECT to_regclass(%s)"
        self.create = (
            f'CREATE TABLE IF NOT EXISTS {name} (key text COLLATE "C" PRIMARY KEY, '
            "value bytea NOT NULL)"
        )
        self.get = f"SELECT value FROM {name} WHERE key = %s"
        self.get_many = f"SELECT key, value FROM {name} WHERE key = ANY(%s)"
        # Rows staged by COPY; emptied at every commit (and gone with the connection).
        self.staging = (
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} (key text, value bytea) "
            "ON COMMIT DELETE ROWS"
        )
        self.copy = f"COPY pg_temp.{STAGING} (key, value) FROM STDIN (FORMAT BINARY)"
        self.merge = (
            f"INSERT INTO {name} (key, value) SELECT key, value FROM pg_temp.{STAGING} "
            "ORDER BY key ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        )
        self.keys = f"SELECT key FROM {name} WHERE key LIKE %s ORDER BY key"
        self.delete = f"DELETE FROM {name} WHERE key = %s"
        self.delete_bad = f"DELETE FROM {name} WHERE key = %s AND value = %s"
