"""What a test does when a real service it needs (Ray, Dask, PostgreSQL, S3 …) is missing.

Locally such tests skip with a reason that says how to get the service; in CI (``.ci/run`` sets
``THEMIS_REQUIRE_SERVICES=1``) a missing service is a failure, so nothing passes by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
from typing import NoReturn

import pytest

REQUIRE_ENV = "THEMIS_REQUIRE_SERVICES"


def services_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false", "no")


def service_missing(name: str, how: str) -> NoReturn:
    """Skip (locally) or fail (in CI) because ``name`` is not available; ``how`` gets it."""
    message = f"{name} is not available: {how}"
    if services_required():
        pytest.fail(f"{message} ({REQUIRE_ENV} is set, so a missing service fails)")
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def which_or_missing(program: str, name: str, how: str) -> str:
    """The path of ``program``, or :func:`service_missing`."""
    path = shutil.which(program)
    if path is None:
        service_missing(name, how)
    return path
