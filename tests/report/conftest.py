"""Fixtures of the report and ``themis`` command tests: the real PostgreSQL server."""

from __future__ import annotations

from support.pg_server import pg_server, pg_url  # noqa: F401
