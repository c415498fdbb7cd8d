"""Fixtures of the report and ``themis`` command tests: two runs to compare, real PostgreSQL
and S3 (moto) servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from report_support import ROWS, copy_runs, sweep
from support.pg_server import pg_server, pg_url  # noqa: F401
from support.s3_server import s3_bucket, s3_env, s3_server  # noqa: F401


@pytest.fixture(scope="session")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    """A folder store keeping a good run ``base`` (10% wrong) and a worse run ``new`` (60%).

    Each run generates in a store of its own (the fake's wrong_rate must not hit the cache);
    both are then kept in the one store returned. Do not modify the reports.
    """
    root = tmp_path_factory.mktemp("runs")
    base = sweep(root / "gen-base", "base", 0.1, n=ROWS)
    new = sweep(root / "gen-new", "new", 0.6, n=ROWS)
    shared = root / "store"
    copy_runs(root / "gen-base", shared, ("base",))
    copy_runs(root / "gen-new", shared, ("new",))
    return shared, base, new
