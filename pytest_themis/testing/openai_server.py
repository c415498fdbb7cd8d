"""A small OpenAI-compatible HTTP server with seeded fault injection, for tests and benchmarks.

The server speaks just enough HTTP/1.1 (keep-alive, ``Content-Length`` and chunked request
bodies) to serve ``POST /v1/chat/completions``, ``POST /v1/completions`` (text) and
``GET /v1/models``. It runs on its own event loop in a background thread, so blocking tests,
asyncio tests and benchmarks can all use it::

    with OpenAIServer(FaultPlan(rate_429=0.2, retry_after=0.05)) as server:
        create_provider("litellm", api_base=server.url)
        ...
        server.stats.requests_by_prompt

Faults are drawn from an RNG seeded by ``(plan.seed, request key, attempt)`` where the request
key is the model, the last user message and the sampling parameters, and the attempt counts
earlier requests with that key. The outcome of every attempt is therefore reproducible no
matter how requests interleave, and a retry of the same request draws afresh, so it can succeed.

Outcome labels recorded in :attr:`ServerStats.arrivals`: ``ok``, ``length``, ``malformed``,
``empty_choices``, ``rate_limit``, ``busy`` (over ``max_concurrency``), ``error_500``,
``error_503``, ``timeout``, ``reset`` and ``status_<code>`` (from ``status_for_model``).

Run it as a process: ``python -m pytest_themis.testing.openai_server --port 0 --latency 0.1``
prints the base URL on the first line of stdout and serves until it is killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["FaultPlan", "OpenAIServer", "ServerStats", "default_responder"]

Responder = Callable[[list[dict[str, Any]], dict[str, Any]], str]

_RATE_FIELDS = (
    "rate_429",
    "rate_500",
    "rate_503",
    "rate_timeout",
    "rate_reset",
    "rate_malformed",
    "rate_empty_choices",
    "rate_length",
)
_OUTCOME_OF_RATE = {
    "rate_429": "rate_limit",
    "rate_500": "error_500",
    "rate_503": "error_503",
    "rate_timeout": "timeout",
    "rate_reset": "reset",
    "rate_malformed": "malformed",
    "rate_empty_choices": "empty_choices",
    "rate_length": "length",
}
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_api_key",
    403: "permission_denied",
    404: "model_not_found",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
}
_MAX_BODY = 32 * 1024 * 1024


@dataclass
class FaultPlan:
    """What the server does wrong, and how often. Rates are shares of requests in ``[0, 1]``.

    The rate faults are mutually exclusive (one uniform draw per request), so their sum must not
    exceed 1. ``latency`` (seconds) delays every admitted request; ``timeout_delay`` is how long a
    ``timeout`` request stalls before it would answer; ``retry_after`` (seconds) is sent with
    every 429. ``status_for_model`` answers every request for a model with a fixed status.
    """

    latency: float = 0.0
    rate_429: float = 0.0
    retry_after: float = 1.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_timeout: float = 0.0
    timeout_delay: float = 30.0
    rate_reset: float = 0.0
    rate_malformed: float = 0.0
    rate_empty_choices: float = 0.0
    rate_length: float = 0.0
    max_concurrency: int | None = None
    status_for_model: dict[str, int] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        total = 0.0
        for name in _RATE_FIELDS:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FaultPlan.{name} must be a share in [0, 1], got {value!r}")
            total += value
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"FaultPlan fault rates add up to {total:g} > 1; lower some of "
                f"{', '.join(_RATE_FIELDS)}"
            )
        for name in ("latency", "retry_after", "timeout_delay"):
            if getattr(self, name) < 0:
                raise ValueError(f"FaultPlan.{name} must be >= 0 seconds")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ValueError("FaultPlan.max_concurrency must be >= 1 or None")

    def draw(self, key: str, attempt: int) -> str:
        """Outcome label of attempt number ``attempt`` (0-based) of the request ``key``."""
        bands = [(getattr(self, name), _OUTCOME_OF_RATE[name]) for name in _RATE_FIELDS]
        if not any(rate for rate, _ in bands):
            return "ok"
        u = random.Random(f"{self.seed}\x1f{attempt}\x1f{key}").random()
        edge = 0.0
        for rate, outcome in bands:
            edge += rate
            if u < edge:
                return outcome
        return "ok"


@dataclass
class ServerStats:
    """What the server saw. ``arrivals`` holds ``(time.monotonic(), prompt, outcome)`` tuples."""

    request_count: int = 0
    requests_by_prompt: Counter[str] = field(default_factory=Counter)
    max_in_flight: int = 0
    arrivals: list[tuple[float, str, str]] = field(default_factory=list)
    status_counts: Counter[int] = field(default_factory=Counter)
    outcome_counts: Counter[str] = field(default_factory=Counter)
    connections: int = 0

    def arrivals_by_prompt(self) -> dict[str, list[tuple[float, str]]]:
        """``{prompt: [(time, outcome), ...]}`` in arrival order."""
        out: dict[str, list[tuple[float, str]]] = {}
        for t, prompt, outcome in self.arrivals:
            out.setdefault(prompt, []).append((t, outcome))
        return out


def default_responder(messages: list[dict[str, Any]], request: dict[str, Any]) -> str:
    """Deterministic answer: ``#### <x>`` for a prompt line ``EXPECTED: <x>``, else an echo."""
    prompt = _last_user_text(messages)
    for line in prompt.splitlines():
        stripped = line.strip()
        if stripped.startswith("EXPECTED:"):
            return f"#### {stripped[len('EXPECTED:') :].strip()}"
    head = " ".join(prompt.split())[:60]
    return f"Answer from {request.get('model', 'model')}: {head}"


def _last_user_text(messages: Sequence[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    if messages and isinstance(messages[-1], dict):
        return _content_text(messages[-1].get("content"))
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


class _Reset(Exception):
    """Close the connection without answering."""


class OpenAIServer:
    """An OpenAI-compatible chat server on ``127.0.0.1`` with injectable faults (see module doc).

    Use as a context manager, or call :meth:`start` / :meth:`stop`. ``responder(messages,
    request_json) -> str`` replaces :func:`default_responder`.
    """

    def __init__(
        self,
        plan: FaultPlan | None = None,
        responder: Responder | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._plan = plan or FaultPlan()
        self._responder = responder or default_responder
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._stats = ServerStats()
        self._attempts: Counter[str] = Counter()
        self._in_flight = 0
        self._created = int(time.time())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(
                "OpenAIServer is not running; call start() or use it in a with block"
            )
        return self._port

    @property
    def url(self) -> str:
        """Base URL to hand to OpenAI clients, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://{self._host}:{self.port}/v1"

    def start(self) -> OpenAIServer:
        """Bind and serve in a background thread; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("OpenAIServer is already running")
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run_thread, name="openai-server", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Close the listener and every connection, cancel stalled requests, join the thread."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        thread.join()
        self._thread = None
        self._port = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run_thread(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self.serve())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            if not self._ready.is_set():
                self._startup_error = exc
        finally:
            self._ready.set()
            loop.close()
            self._loop = None

    async def serve(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve on the running loop until :meth:`stop` (or cancellation)."""
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(
            self._handle_connection, self._host, self._requested_port, backlog=1024
        )
        self._port = server.sockets[0].getsockname()[1]
        self._ready.set()
        if on_ready is not None:
            on_ready(self.url)
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            for task in list(self._handlers):
                task.cancel()
            if self._handlers:
                await asyncio.gather(*self._handlers, return_exceptions=True)
            await server.wait_closed()

    # -- configuration and statistics ---------------------------------------------------------

    @property
    def plan(self) -> FaultPlan:
        return self._plan

    def set_plan(self, plan: FaultPlan) -> None:
        """Use ``plan`` for requests arriving from now on (attempt counters are kept)."""
        self._plan = plan

    @property
    def stats(self) -> ServerStats:
        """A consistent copy of the statistics collected since start or :meth:`reset_stats`."""
        with self._lock:
            live = self._stats
            return ServerStats(
                request_count=live.request_count,
                requests_by_prompt=Counter(live.requests_by_prompt),
                max_in_flight=live.max_in_flight,
                arrivals=list(live.arrivals),
                status_counts=Counter(live.status_counts),
                outcome_counts=Counter(live.outcome_counts),
                connections=live.connections,
            )

    @property
    def request_count(self) -> int:
        return self._stats.request_count

    def reset_stats(self) -> None:
        """Forget statistics and per-request attempt counters."""
        with self._lock:
            self._stats = ServerStats()
            self._attempts.clear()

    def wait_for_requests(self, count: int, timeout: float | None = None) -> bool:
        """Block until at least ``count`` requests arrived; False when ``timeout`` ran out."""
        with self._progress:
            return self._progress.wait_for(lambda: self._stats.request_count >= count, timeout)

    # -- HTTP ----------------------------------------------------------------------------------

    async def _handle_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        with self._lock:
            self._stats.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                keep_alive, status, payload, extra = await self._handle_request(head, reader)
                if status == 0:
                    raise _Reset
                if writer.transport.is_closing():  # the client gave up (e.g. a stalled request)
                    return
                writer.write(_http_response(status, payload, extra, keep_alive))
                await writer.drain()
                if not keep_alive:
                    return
        except _Reset:
            _abort_with_rst(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            if not writer.transport.is_closing():
                writer.close()

    async def _handle_request(
        self, head: bytes, reader: asyncio.StreamReader
    ) -> tuple[bool, int, bytes, dict[str, str]]:
        """Parse one request; return ``(keep_alive, status, body, headers)``; status 0 = reset."""
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            return False, 400, _error_body("malformed request line", 400), {}
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
        body = b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await _read_chunked(reader)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if length > _MAX_BODY:
                return False, 413, _error_body("request body too large", 413), {}
            body = await reader.readexactly(length)
        path = target.split("?", 1)[0].rstrip("/")
        if path.endswith("/chat/completions"):
            if method != "POST":
                return keep_alive, 405, _error_body(f"use POST for {path}", 405), {}
            status, payload, extra = await self._chat(headers, body)
            return keep_alive, status, payload, extra
        if path.endswith("/completions"):
            if method != "POST":
                return keep_alive, 405, _error_body(f"use POST for {path}", 405), {}
            status, payload, extra = await self._chat(headers, body, text=True)
            return keep_alive, status, payload, extra
        if path.endswith("/models") and method == "GET":
            return keep_alive, 200, self._models_body(), {}
        return keep_alive, 404, _error_body(f"unknown path {method} {path}", 404), {}

    def _models_body(self) -> bytes:
        names = ["fake-chat", *sorted(self._plan.status_for_model)]
        data = [
            {"id": n, "object": "model", "created": self._created, "owned_by": "themis"}
            for n in names
        ]
        return json.dumps({"object": "list", "data": data}).encode()

    async def _chat(
        self, headers: dict[str, str], body: bytes, text: bool = False
    ) -> tuple[int, bytes, dict[str, str]]:
        """A chat completion, or with ``text`` a text completion (its ``prompt`` is the user
        message; faults, statistics and answers are the same)."""
        field = "prompt" if text else "messages"
        try:
            request = json.loads(body)
            messages = request[field]
            model = str(request.get("model", ""))
        except (ValueError, KeyError, TypeError):
            return 400, _error_body(f"body must be JSON with a {field!r} field", 400), {}
        if text:
            if not isinstance(messages, str):
                return 400, _error_body("'prompt' must be a string", 400), {}
            messages = [{"role": "user", "content": messages}]
        if not isinstance(messages, list):
            return 400, _error_body("'messages' must be a list", 400), {}
        plan = self._plan
        prompt = _last_user_text(messages)
        key = "\x1f".join(
            (
                model,
                prompt,
                str(request.get("temperature")),
                str(request.get("top_p")),
                str(request.get("max_tokens")),
                str(request.get("seed")),
            )
        )
        with self._progress:
            stats = self._stats
            attempt = self._attempts[key]
            self._attempts[key] = attempt + 1
            self._in_flight += 1
            in_flight = self._in_flight
            if in_flight > stats.max_in_flight:
                stats.max_in_flight = in_flight
            forced = plan.status_for_model.get(model)
            if forced is not None:
                outcome = f"status_{forced}"
            elif plan.max_concurrency is not None and in_flight > plan.max_concurrency:
                outcome = "busy"
            else:
                outcome = plan.draw(key, attempt)
            stats.request_count += 1
            stats.requests_by_prompt[prompt] += 1
            stats.arrivals.append((time.monotonic(), prompt, outcome))
            stats.outcome_counts[outcome] += 1
            self._progress.notify_all()
        status = 0
        try:
            if outcome != "busy" and plan.latency > 0:
                await asyncio.sleep(plan.latency)
            status, payload, extra = await self._respond(
                outcome, plan, model, messages, request, headers, text
            )
            return status, payload, extra
        finally:
            with self._lock:
                self._in_flight -= 1
                if status:
                    self._stats.status_counts[status] += 1

    async def _respond(
        self,
        outcome: str,
        plan: FaultPlan,
        model: str,
        messages: list[dict[str, Any]],
        request: dict[str, Any],
        headers: dict[str, str],
        text_completion: bool = False,
    ) -> tuple[int, bytes, dict[str, str]]:
        if outcome == "reset":
            return 0, b"", {}
        if outcome in ("rate_limit", "busy"):
            wait = plan.retry_after
            extra = {"Retry-After": f"{wait:g}", "retry-after-ms": str(int(wait * 1000))}
            message = "too many requests in flight" if outcome == "busy" else "rate limit reached"
            return 429, _error_body(message, 429), extra
        if outcome == "error_500":
            return 500, _error_body("the server had an error processing your request", 500), {}
        if outcome == "error_503":
            return 503, _error_body("the engine is currently overloaded", 503), {}
        if outcome.startswith("status_"):
            status = int(outcome[len("status_") :])
            message = f"request for model {model!r} refused"
            if status in (401, 403):
                # Echo the credentials like a careless provider would, to test redaction.
                custom = ", ".join(
                    f"{k}={v}"
                    for k, v in headers.items()
                    if k.startswith("x-") and not k.startswith("x-stainless")
                )
                message = f"Incorrect API key provided: {headers.get('authorization', '')!r}"
                if custom:
                    message += f" (headers: {custom})"
            return status, _error_body(message, status), {}
        if outcome == "malformed":
            return 200, b"<html>upstream proxy error: this is not JSON", {}
        if outcome == "timeout":
            await asyncio.sleep(plan.timeout_delay)
        text = self._responder(messages, request)
        finish_reason = "stop"
        max_tokens = request.get("max_tokens") or request.get("max_completion_tokens")
        words = text.split()
        if isinstance(max_tokens, int) and 0 < max_tokens < len(words):
            text = " ".join(words[:max_tokens])
            finish_reason = "length"
        if outcome == "length":
            finish_reason = "length"
        prompt_tokens = sum(len(_content_text(m.get("content")).split()) for m in messages)
        completion_tokens = len(text.split())
        choices: list[dict[str, Any]] = []
        if outcome != "empty_choices":
            answer: dict[str, Any] = (
                {"text": text}
                if text_completion
                else {"message": {"role": "assistant", "content": text}}
            )
            choices.append({"index": 0, **answer, "logprobs": None, "finish_reason": finish_reason})
        payload = {
            "id": f"{'cmpl' if text_completion else 'chatcmpl'}-{self._stats.request_count}",
            "object": "text_completion" if text_completion else "chat.completion",
            "created": self._created,
            "model": model,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return 200, json.dumps(payload).encode(), {}


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # trailer terminator
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


def _error_body(message: str, status: int) -> bytes:
    error = {"message": message, "type": _ERROR_TYPES.get(status, "server_error"), "code": status}
    return json.dumps({"error": error}).encode()


def _http_response(status: int, body: bytes, extra: dict[str, str], keep_alive: bool) -> bytes:
    head = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: keep-alive" if keep_alive else "Connection: close",
    ]
    head += [f"{name}: {value}" for name, value in extra.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _abort_with_rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


# -- command line ------------------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_themis.testing.openai_server",
        description="Serve a fault-injecting OpenAI-compatible API on 127.0.0.1 until killed. "
        "The first line of stdout is the base URL.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    defaults = FaultPlan()
    for f in fields(FaultPlan):
        if f.name in ("status_for_model", "max_concurrency"):
            continue
        kind = int if f.name == "seed" else float
        parser.add_argument(
            "--" + f.name.replace("_", "-"), type=kind, default=getattr(defaults, f.name)
        )
    parser.add_argument("--max-concurrency", type=int, default=None)
    parser.add_argument(
        "--status-for-model",
        action="append",
        default=[],
        metavar="MODEL=STATUS",
        help="always answer requests for MODEL with STATUS (repeatable)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    forced: dict[str, int] = {}
    for item in args.status_for_model:
        model, _, status = item.rpartition("=")
        if not model or not status.isdigit():
            print(f"--status-for-model expects MODEL=STATUS, got {item!r}", file=sys.stderr)
            return 2
        forced[model] = int(status)
    options = {f.name: getattr(args, f.name) for f in fields(FaultPlan) if hasattr(args, f.name)}
    options["status_for_model"] = forced
    try:
        plan = FaultPlan(**options)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    server = OpenAIServer(plan, host=args.host, port=args.port)

    def announce(url: str) -> None:
        sys.stdout.write(url + "\n")
        sys.stdout.flush()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        serving = asyncio.ensure_future(server.serve(on_ready=announce))
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, serving.cancel)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            await serving
        except asyncio.CancelledError:
            pass

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
