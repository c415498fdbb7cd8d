"""A throwaway PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` in a temporary folder.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
``postgres`` user (``runuser``). It listens on 127.0.0.1 on a free port with trust
authentication, except for one password-protected role (:data:`PASSWORD_USER`) used to test a
wrong password. Stopped with ``pg_ctl stop -m immediate`` and, failing that, by its PID.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .services import free_port, service_missing

__all__ = [
    "DATABASE",
    "PASSWORD",
    "PASSWORD_USER",
    "PostgresServer",
    "pg_server",
    "pg_url",
    "running_server",
]

DATABASE = "themis"
PASSWORD_USER = "themis_pw"
PASSWORD = "s3cret-pw"
HOW = (
    "install PostgreSQL server binaries (Debian: apt-get install -y postgresql) so that "
    "initdb and pg_ctl are on PATH or in /usr/lib/postgresql/<version>/bin"
)


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    return versions[0].parent if versions else None


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder, controlled with ``pg_ctl``."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="themis-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            import pwd

            entry = pwd.getpwnam("postgres")
            os.chmod(self.root, 0o755)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    # -- URLs ------------------------------------------------------------------------------------

    def url(self, database: str = DATABASE, user: str = "postgres", password: str = "") -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    # -- lifecycle -------------------------------------------------------------------------------

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=self.root, check=False
        )

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{what} failed: {result.stdout}{result.stderr}{log[-2000:]}")

    def init(self) -> None:
        self._check(
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ),
            "initdb",
        )
        # The password-protected role authenticates with a password; everyone else is trusted.
        hba = (
            f"host all {PASSWORD_USER} 127.0.0.1/32 scram-sha-256\n"
            "host all all 127.0.0.1/32 trust\n"
            "local all all trust\n"
        )
        self._write_as_owner(self.data / "pg_hba.conf", hba)

    def _write_as_owner(self, path: Path, text: str) -> None:
        stat = self.data.stat()
        path.write_text(text)
        if self._as_postgres:
            os.chown(path, stat.st_uid, stat.st_gid)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c shared_buffers=16MB -c max_connections=40"
        )
        result = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start"
        )
        self._check(result, "pg_ctl start")

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", timeout=60)
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def restart(self) -> None:
        """Stop the server abruptly (dropping every connection) and start it again."""
        self.stop("immediate")
        self.start()

    def pid(self) -> int | None:
        pidfile = self.data / "postmaster.pid"
        try:
            return int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [
                str(self.bin_dir / "psql") if (self.bin_dir / "psql").exists() else "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-Atc",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {result.stderr}")
        return result.stdout

    def setup(self) -> None:
        self.psql(f"CREATE DATABASE {DATABASE}")
        self.psql(f"CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD '{PASSWORD}'")
        self.psql(f"GRANT ALL ON SCHEMA public TO {PASSWORD_USER}", database=DATABASE)

    def wait_ready(self, deadline: float = 30.0) -> None:
        end = time.monotonic() + deadline
        while True:
            try:
                self.psql("SELECT 1")
                return
            except RuntimeError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer]:
    """A started, set-up server (skips or fails via ``service_missing`` without binaries)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        service_missing("psycopg (the postgres extra)", 'pip install -e ".[postgres]"')
    bin_dir = _bin_dir()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        service_missing("PostgreSQL", HOW)
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            service_missing("PostgreSQL", "as root, a 'postgres' user is needed to run the server")
        if shutil.which("runuser") is None:
            service_missing("PostgreSQL", "as root, runuser is needed to run the server")
    server = PostgresServer(bin_dir)
    try:
        server.init()
        server.start()
        server.wait_ready()
        server.setup()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server per test session (per xdist worker); tests may restart it."""
    with running_server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A URL to the session server with a table of this test's own (``?table=…``)."""
    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]
    pg_server.psql(f"DROP TABLE IF EXISTS {name}", database=DATABASE)
    return f"{pg_server.url()}?table={name}"


def stored_generation_keys(url: str) -> set[str]:
    """The ``gen:`` keys kept in the table of store URL ``postgresql://…?table=NAME`` (none
    while the table does not exist)."""
    import psycopg  # the pg_server fixture has checked that it is installed

    base, table = url.split("?table=")
    with psycopg.connect(base, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        if exists is None or exists[0] is None:
            return set()
        return {row[0] for row in conn.execute(f"SELECT key FROM {table} WHERE key LIKE 'gen:%'")}
