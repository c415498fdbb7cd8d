"""Fixtures for the storage tests: real servers started on 127.0.0.1."""

from support.pg_server import pg_server, pg_url  # noqa: F401
from support.s3_server import s3_bucket, s3_env, s3_proxy, s3_server  # noqa: F401
