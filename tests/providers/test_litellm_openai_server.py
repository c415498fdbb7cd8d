"""The fault-injecting OpenAI-compatible server used by the litellm tests and benchmarks."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import subprocess
import sys
import time

import pytest
from support.raw_http import async_post_chat, chat_body, post_chat

from pytest_themis.testing import FaultPlan, OpenAIServer


def _connect(server: OpenAIServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)


def test_chat_completion_shape_and_expected_answer(openai_server: OpenAIServer) -> None:
    conn = _connect(openai_server)
    status, headers, raw = post_chat(conn, chat_body("Add them up.\nEXPECTED: 17\n"))
    assert status == 200
    assert headers["content-type"] == "application/json"
    body = json.loads(raw)
    assert body["object"] == "chat.completion"
    assert body["model"] == "fake-chat"
    assert isinstance(body["id"], str) and isinstance(body["created"], int)
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "#### 17"}
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["prompt_tokens"] == 5  # "Add them up. EXPECTED: 17"
    assert usage["completion_tokens"] == 2
    assert usage["total_tokens"] == 7


def test_default_answer_is_deterministic_and_depends_on_prompt(
    openai_server: OpenAIServer,
) -> None:
    conn = _connect(openai_server)
    answers = [
        json.loads(post_chat(conn, chat_body(p))[2])["choices"][0]["message"]["content"]
        for p in ("first prompt", "second prompt", "first prompt")
    ]
    assert answers[0] == answers[2]
    assert answers[0] != answers[1]


def test_keep_alive_serves_many_requests_on_one_connection(openai_server: OpenAIServer) -> None:
    conn = _connect(openai_server)
    for i in range(25):
        assert post_chat(conn, chat_body(f"p{i % 5}"))[0] == 200
    stats = openai_server.stats
    assert stats.connections == 1
    assert stats.request_count == 25
    assert stats.requests_by_prompt == {f"p{i}": 5 for i in range(5)}
    assert stats.status_counts == {200: 25}
    assert [outcome for _, _, outcome in stats.arrivals] == ["ok"] * 25
    times = [t for t, _, _ in stats.arrivals]
    assert times == sorted(times)
    stats.requests_by_prompt["p0"] += 100  # a snapshot: the server's own counts are unaffected
    assert openai_server.stats.requests_by_prompt["p0"] == 5
    openai_server.reset_stats()
    assert openai_server.stats.request_count == 0


def test_custom_responder_gets_messages_and_request() -> None:
    seen: list[tuple[list[dict], dict]] = []

    def responder(messages: list[dict], request: dict) -> str:
        seen.append((messages, request))
        return f"{request['model']} says {len(messages)}"

    with OpenAIServer(responder=responder) as server:
        conn = _connect(server)
        status, _, raw = post_chat(conn, chat_body("hello", model="m1", temperature=0.5))
    assert status == 200
    assert json.loads(raw)["choices"][0]["message"]["content"] == "m1 says 1"
    assert seen[0][0] == [{"role": "user", "content": "hello"}]
    assert seen[0][1]["temperature"] == 0.5


def test_max_tokens_truncates_with_finish_reason_length() -> None:
    with OpenAIServer(responder=lambda messages, request: "one two three four five") as server:
        conn = _connect(server)
        body = json.loads(post_chat(conn, chat_body("x", max_tokens=3))[2])
    assert body["choices"][0]["message"]["content"] == "one two three"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3


def test_models_unknown_paths_and_bad_bodies(openai_server: OpenAIServer) -> None:
    conn = _connect(openai_server)
    conn.request("GET", "/v1/models")
    response = conn.getresponse()
    models = json.loads(response.read())
    assert response.status == 200 and models["object"] == "list"
    assert {"id", "object"} <= set(models["data"][0])
    conn.request("GET", "/v1/nothing-here")
    response = conn.getresponse()
    assert response.status == 404
    assert "unknown path" in json.loads(response.read())["error"]["message"]
    conn.request("POST", "/v1/chat/completions", "{not json", {"Content-Length": "9"})
    response = conn.getresponse()
    assert response.status == 400
    assert "error" in json.loads(response.read())
    # The connection survived all of that.
    assert post_chat(conn, chat_body("still alive"))[0] == 200
    assert openai_server.stats.connections == 1


def test_chunked_request_body(openai_server: OpenAIServer) -> None:
    payload = json.dumps(chat_body("chunked\nEXPECTED: 3")).encode()
    half = len(payload) // 2
    chunks = [payload[:half], payload[half:]]
    raw = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", openai_server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n" + raw
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert (
        json.loads(data.partition(b"\r\n\r\n")[2])["choices"][0]["message"]["content"] == "#### 3"
    )


@pytest.mark.parametrize(
    ("plan", "status", "outcome"),
    [
        (FaultPlan(rate_429=1.0, retry_after=2.5), 429, "rate_limit"),
        (FaultPlan(rate_500=1.0), 500, "error_500"),
        (FaultPlan(rate_503=1.0), 503, "error_503"),
        (FaultPlan(rate_malformed=1.0), 200, "malformed"),
        (FaultPlan(rate_empty_choices=1.0), 200, "empty_choices"),
        (FaultPlan(rate_length=1.0), 200, "length"),
        (FaultPlan(status_for_model={"fake-chat": 401}), 401, "status_401"),
        (FaultPlan(status_for_model={"fake-chat": 404}), 404, "status_404"),
    ],
)
def test_each_fault_kind(plan: FaultPlan, status: int, outcome: str) -> None:
    with OpenAIServer(plan) as server:
        got_status, headers, raw = post_chat(_connect(server), chat_body("q"))
        stats = server.stats
    assert got_status == status
    assert stats.arrivals[0][2] == outcome
    assert stats.status_counts == {status: 1}
    if status == 429:
        assert headers["retry-after"] == "2.5"
        assert headers["retry-after-ms"] == "2500"
    if outcome == "malformed":
        with pytest.raises(ValueError):
            json.loads(raw)
    if outcome == "empty_choices":
        assert json.loads(raw)["choices"] == []
    if outcome == "length":
        assert json.loads(raw)["choices"][0]["finish_reason"] == "length"
    if status >= 400:
        assert "message" in json.loads(raw)["error"]


def test_status_for_model_only_hits_that_model() -> None:
    with OpenAIServer(FaultPlan(status_for_model={"bad-model": 403})) as server:
        conn = _connect(server)
        assert post_chat(conn, chat_body("q", model="bad-model"))[0] == 403
        assert post_chat(conn, chat_body("q", model="good-model"))[0] == 200


def test_auth_failure_echoes_credentials_for_redaction_tests() -> None:
    with OpenAIServer(FaultPlan(status_for_model={"fake-chat": 401})) as server:
        _, _, raw = post_chat(
            _connect(server),
            chat_body("q"),
            {"Authorization": "Bearer sk-echo-me", "X-Team": "team-secret"},
        )
    message = json.loads(raw)["error"]["message"]
    assert "sk-echo-me" in message and "team-secret" in message


def test_reset_closes_without_answer() -> None:
    with OpenAIServer(FaultPlan(rate_reset=1.0)) as server:
        conn = _connect(server)
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            post_chat(conn, chat_body("q"))
        assert server.stats.arrivals[0][2] == "reset"
        assert server.stats.status_counts == {}


def test_stalled_request_does_not_delay_stop() -> None:
    server = OpenAIServer(FaultPlan(rate_timeout=1.0, timeout_delay=60.0)).start()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=0.3)
    body = json.dumps(chat_body("slow")).encode()
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    assert server.wait_for_requests(1, timeout=10)
    with pytest.raises(TimeoutError):
        sock.recv(1024)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 5
    sock.close()
    assert server.stats.arrivals[0][2] == "timeout"


def test_faults_are_seeded_and_retries_can_succeed() -> None:
    plan = FaultPlan(rate_500=0.4, rate_429=0.2, retry_after=0.0, seed=7)

    def attempts_until_success(server: OpenAIServer) -> list[int]:
        conn = _connect(server)
        counts = []
        for i in range(60):
            for attempt in range(1, 50):
                if post_chat(conn, chat_body(f"prompt {i}"))[0] == 200:
                    counts.append(attempt)
                    break
        return counts

    with OpenAIServer(plan) as server:
        first = attempts_until_success(server)
        stats = server.stats
        server.reset_stats()
        second = attempts_until_success(server)
    assert len(first) == 60  # every prompt eventually succeeded
    assert first == second  # the same faults, request for request
    failures = stats.outcome_counts["error_500"] + stats.outcome_counts["rate_limit"]
    share = failures / stats.request_count
    assert 0.4 < share < 0.8  # expected 0.6 of attempts fail
    with OpenAIServer(FaultPlan(rate_500=0.4, rate_429=0.2, retry_after=0.0, seed=8)) as other:
        assert attempts_until_success(other) != first


def test_max_in_flight_and_concurrency_limit() -> None:
    async def burst(port: int, n: int) -> list[tuple[int, dict[str, str], bytes]]:
        return await asyncio.gather(*(async_post_chat(port, chat_body(f"c{i}")) for i in range(n)))

    # The server holds each request for a second, so all 12 are in flight together.
    with OpenAIServer(FaultPlan(latency=1.0)) as server:
        results = asyncio.run(burst(server.port, 12))
        assert [r[0] for r in results] == [200] * 12
        assert server.stats.max_in_flight == 12
        assert server.stats.connections == 12

    with OpenAIServer(FaultPlan(latency=1.0, max_concurrency=4, retry_after=0.25)) as server:
        results = asyncio.run(burst(server.port, 12))
        stats = server.stats
    statuses = sorted(r[0] for r in results)
    assert statuses == [200] * 4 + [429] * 8
    assert all(r[1]["retry-after"] == "0.25" for r in results if r[0] == 429)
    assert stats.outcome_counts == {"ok": 4, "busy": 8}


def test_set_plan_switches_faults_between_runs(openai_server: OpenAIServer) -> None:
    conn = _connect(openai_server)
    openai_server.set_plan(FaultPlan(rate_503=1.0))
    assert post_chat(conn, chat_body("a"))[0] == 503
    openai_server.set_plan(FaultPlan())
    assert post_chat(conn, chat_body("a"))[0] == 200
    assert openai_server.stats.arrivals_by_prompt()["a"][0][1] == "error_503"


def test_wait_for_requests_times_out_without_traffic(openai_server: OpenAIServer) -> None:
    assert openai_server.wait_for_requests(0, timeout=0)
    assert not openai_server.wait_for_requests(1, timeout=0.05)


def test_fault_plan_validation() -> None:
    with pytest.raises(ValueError, match="add up to"):
        FaultPlan(rate_500=0.6, rate_503=0.6)
    with pytest.raises(ValueError, match="rate_429"):
        FaultPlan(rate_429=1.5)
    with pytest.raises(ValueError, match="latency"):
        FaultPlan(latency=-1)
    with pytest.raises(ValueError, match="max_concurrency"):
        FaultPlan(max_concurrency=0)


def test_server_lifecycle_errors() -> None:
    server = OpenAIServer()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    with server:
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
        port = server.port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_command_line_server_prints_url_and_serves() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_themis.testing.openai_server",
            "--port",
            "0",
            "--latency",
            "0.01",
            "--max-concurrency",
            "40",
            "--status-for-model",
            "nope=404",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        status, _, raw = post_chat(conn, chat_body("EXPECTED: 9"))
        assert status == 200
        assert json.loads(raw)["choices"][0]["message"]["content"] == "#### 9"
        assert post_chat(conn, chat_body("x", model="nope"))[0] == 404
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_command_line_rejects_bad_plan() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest_themis.testing.openai_server", "--rate-500", "2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "rate_500" in result.stderr
