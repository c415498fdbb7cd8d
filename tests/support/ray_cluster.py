"""Real Ray clusters for tests: in this process (``ray.init``) or a head node as a subprocess.

Both keep memory small (an 80 MB object store, no dashboard) and skip locally / fail in CI
through :func:`support.services.service_missing` when Ray cannot start.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .services import free_port, service_missing

OBJECT_STORE_BYTES = 80 * 1024 * 1024
HOW = 'pip install "pytest-themis[ray]" (Ray must be able to start 2 CPUs on 127.0.0.1)'


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        service_missing("Ray", HOW)
    return ray


@contextmanager
def local_ray() -> Iterator[Any]:
    """``ray.init(num_cpus=2)`` in this process; shut down afterwards."""
    ray = import_ray()
    try:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=OBJECT_STORE_BYTES,
            log_to_driver=False,
            configure_logging=False,
        )
    except Exception as exc:  # noqa: BLE001 - any start failure means "no Ray here"
        service_missing("Ray", f"{HOW}; ray.init failed: {exc}")
    try:
        yield ray
    finally:
        ray.shutdown()


def _ray_cli() -> str:
    path = Path(sys.executable).with_name("ray")
    found = str(path) if path.exists() else shutil.which("ray")
    if found is None:
        service_missing("Ray", HOW)
    return found


@contextmanager
def ray_head(tmp_dir: Path) -> Iterator[str]:
    """``ray start --head --num-cpus 2 --port FREE`` as a subprocess; yields ``host:port``.

    Stopped with ``ray stop`` for this head's session (and its process group killed by PID).
    """
    port = free_port()
    cli = _ray_cli()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    temp = tmp_dir / "ray"
    temp.mkdir(parents=True, exist_ok=True)
    # Ray's socket paths must stay short (AF_UNIX limit): use a short folder under /tmp.
    short = Path("/tmp") / f"rt{port}"
    short.mkdir(exist_ok=True)
    command = [
        cli,
        "start",
        "--head",
        "--block",
        "--num-cpus",
        "2",
        "--port",
        str(port),
        "--node-ip-address",
        "127.0.0.1",
        "--include-dashboard",
        "false",
        "--object-store-memory",
        str(OBJECT_STORE_BYTES),
        "--temp-dir",
        str(short),
        "--disable-usage-stats",
    ]
    log = (temp / "head.log").open("wb")
    proc = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    address = f"127.0.0.1:{port}"
    try:
        if not _wait_listening("127.0.0.1", port, proc, timeout=90):
            text = (temp / "head.log").read_text(errors="replace")[-2000:]
            service_missing("Ray head node", f"{HOW}; `ray start --head` did not come up: {text}")
        yield address
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
        shutil.rmtree(short, ignore_errors=True)


def _wait_listening(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.2)
    return False
