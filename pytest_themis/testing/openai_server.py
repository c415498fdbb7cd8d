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

import asyncio
import json
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any

from .faults import (
    FaultPlan,
    Responder,
    ServerStats,
    default_responder,
    last_user_text,
    parse_args,
)
from .responses import Exchange, respond
from .wire import (
    MAX_BODY,
    ConnectionReset,
    abort_with_rst,
    error_body,
    http_response,
    read_chunked,
)

__all__ = ["FaultPlan", "OpenAIServer", "ServerStats", "default_responder", "main"]


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
                    raise ConnectionReset
                if writer.transport.is_closing():  # the client gave up (e.g. a stalled request)
                    return
                writer.write(http_response(status, payload, extra, keep_alive))
                await writer.drain()
                if not keep_alive:
                    return
        except ConnectionReset:
            abort_with_rst(writer)
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
            return False, 400, error_body("malformed request line", 400), {}
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
            body = await read_chunked(reader)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if length > MAX_BODY:
                return False, 413, error_body("request body too large", 413), {}
            body = await reader.readexactly(length)
        path = target.split("?", 1)[0].rstrip("/")
        if path.endswith("/chat/completions"):
            if method != "POST":
                return keep_alive, 405, error_body(f"use POST for {path}", 405), {}
            status, payload, extra = await self._chat(headers, body)
            return keep_alive, status, payload, extra
        if path.endswith("/completions"):
            if method != "POST":
                return keep_alive, 405, error_body(f"use POST for {path}", 405), {}
            status, payload, extra = await self._chat(headers, body, text=True)
            return keep_alive, status, payload, extra
        if path.endswith("/models") and method == "GET":
            return keep_alive, 200, self._models_body(), {}
        return keep_alive, 404, error_body(f"unknown path {method} {path}", 404), {}

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
            return 400, error_body(f"body must be JSON with a {field!r} field", 400), {}
        if text:
            if not isinstance(messages, str):
                return 400, error_body("'prompt' must be a string", 400), {}
            messages = [{"role": "user", "content": messages}]
        if not isinstance(messages, list):
            return 400, error_body("'messages' must be a list", 400), {}
        plan = self._plan
        prompt = last_user_text(messages)
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
            status, payload, extra = await respond(
                outcome,
                plan,
                Exchange(model, messages, request, headers, text_completion=text),
                self._responder,
                f"{'cmpl' if text else 'chatcmpl'}-{self._stats.request_count}",
                self._created,
            )
            return status, payload, extra
        finally:
            with self._lock:
                self._in_flight -= 1
                if status:
                    self._stats.status_counts[status] += 1


# -- command line ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
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
