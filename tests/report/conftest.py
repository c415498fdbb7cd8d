"""Fixtures of the report and ``themis`` command tests: real PostgreSQL and S3 (moto) servers."""

from __future__ import annotations

from support.pg_server import pg_server, pg_url  # noqa: F401
from support.s3_server import s3_bucket, s3_env, s3_server  # noqa: F401
