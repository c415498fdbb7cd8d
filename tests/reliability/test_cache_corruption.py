"""Bytes overwritten on disk (SQLite value or value file) are detected, warned and regenerated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from reliability_support import TEMPLATE, marker_test, prompt_of, rows, write_jsonl

from pytest_themis import evaluate
from pytest_themis.storage import CacheIntegrityWarning
from pytest_themis.testing import OpenAIServer, default_responder

pytestmark = pytest.mark.timeout(120)

N = 8
BIG_ROW = 5  # this row's answer is larger than diskcache keeps inline: it lives in a file
BIG_TEXT = "x" * 50_000


def _responder(messages: list[dict[str, Any]], request: dict[str, Any]) -> str:
    answer = default_responder(messages, request)
    if f"item {BIG_ROW}:" in messages[-1]["content"]:
        return f"{answer} {BIG_TEXT}"
    return answer


def _corrupt(paths: list[Path], marker: bytes, back: int) -> int:
    """Overwrite one byte ``back`` bytes before every occurrence of ``marker``; count hits."""
    hits = 0
    for path in paths:
        data = bytearray(path.read_bytes())
        start = data.find(marker)
        while start != -1:
            data[start - back] ^= 0x5A
            hits += 1
            start = data.find(marker, start + 1)
        path.write_bytes(bytes(data))
    return hits


def _flip_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x5A
    path.write_bytes(bytes(data))


def _sqlite_files(cache: Path) -> list[Path]:
    return [p for p in cache.iterdir() if p.name.startswith("cache.db")]


def _value_files(cache: Path) -> list[Path]:
    """Value files of generation entries (a run's per-sample record may be one too)."""
    return [p for p in cache.rglob("*.val") if b'{"samples":' not in p.read_bytes()[:64]]


def _run(url: str, cache: Path) -> Any:
    return evaluate(
        dataset=rows(N), model="openai/fake-chat", api_base=url, prompt=TEMPLATE,
        reference_field="gold", metrics=["exact_match"], extractor="gsm8k", storage=cache,
    )  # fmt: skip


def test_corrupted_entries_are_regenerated_with_a_warning(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    data = rows(N)
    with OpenAIServer(responder=_responder) as server:
        first = _run(server.url, cache)
        assert server.stats.request_count == N
        assert len(_value_files(cache)) == 1  # the big answer is a file, the rest are in SQLite
        # An inline entry (row 2) and the file-backed one (row 5), bytes flipped in place.
        inline = f'"task":"fake-chat-prompt-t0/{data[2]["id"]}#0"'.encode()
        assert _corrupt(_sqlite_files(cache), inline, back=12) >= 1
        _flip_middle(_value_files(cache)[0])

        server.reset_stats()
        with pytest.warns(CacheIntegrityWarning) as caught:
            again = _run(server.url, cache)
        regenerated = server.stats.requests_by_prompt
        assert sorted(regenerated) == sorted(prompt_of(data[i]) for i in (2, BIG_ROW))
        assert len(caught) == 2
        assert all("will be regenerated" in str(w.message) for w in caught)

        server.reset_stats()
        third = _run(server.url, cache)  # the regenerated entries are intact again
        assert server.stats.request_count == 0
    texts = [r.generation.text for r in first.records]
    assert [r.generation.text for r in again.records] == texts
    assert [r.generation.text for r in third.records] == texts
    assert again.evaluation_report.errors == 0


def test_corruption_through_the_pytest_door(door: pytest.Pytester) -> None:
    data = rows(N)
    write_jsonl(door.path / "data.jsonl", data)
    door.makepyfile(test_corrupt=marker_test(["openai/fake-chat"], N))
    args = ["-p", "no:cacheprovider", "--themis-cache-dir=cache"]
    with OpenAIServer() as server:
        door.runpytest(*args, f"--themis-api-base={server.url}").assert_outcomes(passed=1)
        marker = f'fake-chat-ask-t0/{data[3]["id"]}#0"'.encode()
        assert _corrupt(_sqlite_files(door.path / "cache"), marker, back=20) >= 1
        server.reset_stats()
        result = door.runpytest(*args, f"--themis-api-base={server.url}")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["*CacheIntegrityWarning*will be regenerated*"])
        assert sum("CacheIntegrityWarning" in line for line in result.outlines) == 1
        assert list(server.stats.requests_by_prompt) == [prompt_of(data[3])]
