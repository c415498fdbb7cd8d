"""A real S3-protocol server for tests: moto's standalone server, plus a fault-injecting proxy.

``MotoServer`` runs ``python -m moto.server`` as a subprocess on a free 127.0.0.1 port and stops
it by PID. ``FaultProxy`` is a small HTTP proxy in front of it that answers 500 InternalError or
503 SlowDown on a seeded fraction of requests (without forwarding them) and counts requests by
method, so tests and benchmarks can check retries and GET counts at the wire.
"""

from __future__ import annotations

import http.client
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from .services import free_port, service_missing

HOW = 'pip install "moto[server]" boto3 (the S3 tests run moto\'s server on 127.0.0.1)'

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing-key-id",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _wait_for_port(port: int, proc: subprocess.Popen[bytes] | None, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class MotoServer:
    """``python -m moto.server`` on a free port; ``endpoint`` is its URL."""

    def __init__(self, startup_timeout: float = 60.0) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not _wait_for_port(self.port, self.proc, time.monotonic() + startup_timeout):
            self.stop()
            raise RuntimeError(f"moto server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _error_body(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{uuid.uuid4().hex}</RequestId></Error>"
    ).encode()


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer"}


class FaultProxy:
    """An HTTP proxy to ``upstream`` that fails ``fault_rate`` of requests (seeded) and counts.

    ``counts`` holds forwarded requests by method (``GET`` includes LIST calls), ``log`` their
    (method, path) in order; ``faults`` the
    requests answered with an injected 500/503. ``fail_next = n`` answers the next ``n``
    requests with 503 SlowDown whatever the rate; so does ``fail_when(method, path)`` when true.
    """

    def __init__(self, upstream: str, fault_rate: float = 0.0, seed: int = 0) -> None:
        host_port = upstream.split("://", 1)[1].rstrip("/")
        self.upstream_host, port = host_port.rsplit(":", 1)
        self.upstream_port = int(port)
        self.fault_rate = fault_rate
        self.fail_next = 0
        self.fail_when: Callable[[str, str], bool] | None = None
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.log: list[tuple[str, str]] = []
        self.faults = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _handle(self) -> None:
                body = self._body()
                fault = proxy._draw(self.command, self.path)
                if fault is not None:
                    status, code = fault
                    payload = _error_body(code, "injected fault")
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                with proxy._lock:
                    proxy.counts[self.command] += 1
                    proxy.log.append((self.command, self.path))
                status, headers, data = proxy._forward(self.command, self.path, self.headers, body)
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                length = dict((k.lower(), v) for k, v in headers).get("content-length")
                if self.command == "HEAD":
                    self.send_header("Content-Length", length or "0")
                    self.end_headers()
                    return
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _draw(self, method: str, path: str) -> tuple[int, str] | None:
        with self._lock:
            if self.fail_when is not None and self.fail_when(method, path):
                self.faults += 1
                return 503, "SlowDown"
            if self.fail_next > 0:
                self.fail_next -= 1
                self.faults += 1
                return 503, "SlowDown"
            if self.fault_rate <= 0 or self._random.random() >= self.fault_rate:
                return None
            self.faults += 1
            if self._random.random() < 0.5:
                return 500, "InternalError"
            return 503, "SlowDown"

    def _forward(
        self, method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.log.clear()
            self.faults = 0

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def start_moto() -> MotoServer:
    """A running moto server, or :func:`service_missing` when moto/boto3 are not installed."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError:
        service_missing("S3 (moto server)", HOW)
    try:
        return MotoServer()
    except RuntimeError as exc:
        service_missing("S3 (moto server)", f"{exc}; {HOW}")


def make_bucket(endpoint: str, name: str | None = None) -> str:
    """Create a bucket on the server at ``endpoint`` (fake credentials) and return its name."""
    import boto3

    bucket = name or f"themis-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=FAKE_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    client.create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoServer]:
    """moto's S3 server for the whole session (stopped by PID at the end)."""
    server = start_moto()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> dict[str, str]:
    """Fake AWS credentials in the environment; no real profile or config file is read."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    return dict(FAKE_ENV)


@pytest.fixture
def s3_bucket(s3_server: MotoServer, s3_env: dict[str, str]) -> str:
    """A fresh, empty bucket on the session's moto server."""
    return make_bucket(s3_server.endpoint)


@pytest.fixture
def s3_proxy(s3_server: MotoServer) -> Iterator[FaultProxy]:
    """A :class:`FaultProxy` in front of the moto server (no faults until ``fault_rate`` is set)."""
    proxy = FaultProxy(s3_server.endpoint)
    try:
        yield proxy
    finally:
        proxy.stop()
