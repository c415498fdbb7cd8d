"""The engines and stores in extras are public names that import their drivers only when used."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys
import pytest_themis
from pytest_themis.storage import PostgresStorage, S3Storage
names = [pytest_themis.PostgresStorage, pytest_themis.S3Storage,
         pytest_themis.RayExecutionBackend, pytest_themis.DaskExecutionBackend]
assert PostgresStorage is names[0] and S3Storage is names[1]
print(json.dumps(sorted(m for m in ("psycopg", "boto3", "botocore", "ray", "dask", "distributed")
                        if m in sys.modules)))
"""


def test_extra_backends_are_exported_without_importing_their_drivers() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
