"""One process, one cache, the same model behind two endpoints: two sets of cache entries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from reliability_support import TEMPLATE, rows

from pytest_themis import evaluate
from pytest_themis.testing import OpenAIServer

pytestmark = pytest.mark.timeout(60)


def _wrong(messages: list[dict[str, Any]], request: dict[str, Any]) -> str:
    return "#### -1"


def _run(url: str, cache: Path) -> Any:
    return evaluate(
        dataset=rows(4), model="openai/fake-chat", api_base=url, prompt=TEMPLATE,
        reference_field="gold", metrics=["exact_match"], extractor="gsm8k", storage=cache,
    )  # fmt: skip


def test_endpoint_is_part_of_the_cache_key_within_one_process(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with OpenAIServer() as first, OpenAIServer(responder=_wrong) as second:
        one = _run(first.url, cache)
        two = _run(second.url, cache)  # same model id, rows and sampling; another endpoint
        assert second.stats.request_count == 4  # not served from the first endpoint's answers
        again = _run(first.url, cache)
        assert first.stats.request_count == 4  # the first endpoint's answers are still cached
    assert {r.generation.text for r in two.records} == {"#### -1"}
    assert [r.generation.text for r in again.records] == [r.generation.text for r in one.records]
    assert all(r.generation.cached for r in again.records)
