"""The bits of HTTP/1.1 the test server speaks: chunked bodies, responses, errors, resets."""

from __future__ import annotations

import asyncio
import json
import socket
import struct

__all__ = [
    "ERROR_TYPES",
    "MAX_BODY",
    "REASONS",
    "ConnectionReset",
    "abort_with_rst",
    "error_body",
    "http_response",
    "read_chunked",
]

REASONS = {
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
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_api_key",
    403: "permission_denied",
    404: "model_not_found",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
}
MAX_BODY = 32 * 1024 * 1024


class ConnectionReset(Exception):
    """Close the connection without answering."""


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # trailer terminator
            return b"".join(chunks)
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


def error_body(message: str, status: int) -> bytes:
    error = {"message": message, "type": ERROR_TYPES.get(status, "server_error"), "code": status}
    return json.dumps({"error": error}).encode()


def http_response(status: int, body: bytes, extra: dict[str, str], keep_alive: bool) -> bytes:
    head = [
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: keep-alive" if keep_alive else "Connection: close",
    ]
    head += [f"{name}: {value}" for name, value in extra.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def abort_with_rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()
