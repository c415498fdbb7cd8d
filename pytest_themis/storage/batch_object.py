"""The body of one S3 batch object: many cache entries, framed so a torn body is detected.

A magic line, then per entry its key length and value length (two big-endian uint32), the UTF-8
key and the value (in the checksummed encoding of the embedded store). :func:`decode_batch`
returns what it could read and whether the framing was intact.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

__all__ = ["decode_batch", "encode_batch"]

_OBJECT_MAGIC = b"THB1\n"
_FRAME = struct.Struct(">II")


def encode_batch(items: Iterable[tuple[str, bytes]]) -> bytes:
    """One object's body: a magic line, then (key length, value length, key, value) frames."""
    chunks = [_OBJECT_MAGIC]
    for key, data in items:
        raw = key.encode("utf-8")
        chunks.append(_FRAME.pack(len(raw), len(data)))
        chunks.append(raw)
        chunks.append(data)
    return b"".join(chunks)


def decode_batch(body: bytes) -> tuple[list[tuple[str, bytes]], bool]:
    """The (key, encoded value) entries of an object body, and whether the framing was intact."""
    if not body.startswith(_OBJECT_MAGIC):
        return [], False
    entries: list[tuple[str, bytes]] = []
    pos, end = len(_OBJECT_MAGIC), len(body)
    while pos < end:
        if pos + _FRAME.size > end:
            return entries, False
        key_len, value_len = _FRAME.unpack_from(body, pos)
        pos += _FRAME.size
        if pos + key_len + value_len > end:
            return entries, False
        try:
            key = body[pos : pos + key_len].decode("utf-8")
        except UnicodeDecodeError:
            return entries, False
        pos += key_len
        entries.append((key, body[pos : pos + value_len]))
        pos += value_len
    return entries, True
