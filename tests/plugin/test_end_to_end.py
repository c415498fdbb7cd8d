"""End to end: the gsm8k preset against the local OpenAI-compatible server through litellm."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from plugin_support import base_args, read_manifest

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

# Each question carries the answer the local server will give ("EXPECTED: x" -> "#### x");
# the last row's gold differs, so the accuracy is exactly 3/4.
ROWS = [
    ("Ann has 3 apples and buys 4 more. How many?\nEXPECTED: 7", "3 + 4 = 7\n#### 7"),
    ("Ben walks 2 km a day for 9 days. How far?\nEXPECTED: 18", "2 * 9 = 18\n#### 18"),
    ("A box holds 1,200 pins; 200 are used. Left?\nEXPECTED: 1000", "#### 1,000"),
    ("Cara had 10 sweets and ate 4. Left?\nEXPECTED: 5", "10 - 4 = 6\n#### 6"),
]


@pytest.fixture
def server() -> Iterator[object]:
    from pytest_themis.testing.openai_server import OpenAIServer

    with OpenAIServer() as srv:
        yield srv


def test_gsm8k_preset_against_local_server(
    pytester: pytest.Pytester, server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    data = pytester.mkdir("data")
    lines = [json.dumps({"question": q, "answer": a}) for q, a in ROWS]
    (data / "gsm8k.jsonl").write_text("\n".join(lines) + "\n")
    args = [
        *base_args(pytester),
        "--themis-preset=gsm8k",
        "--themis-model=openai/mock",
        f"--themis-api-base={server.url}",  # type: ignore[attr-defined]
        f"--themis-data-dir={data}",
        "--themis-max-retries=0",
    ]
    passed = pytester.runpytest_subprocess(*args, "--themis-fail-under=0.7")
    passed.assert_outcomes(passed=1)
    passed.stdout.fnmatch_lines(["gsm8k", "  mock-*", "*NumericMatch 0.750*"])
    assert server.request_count == 4  # type: ignore[attr-defined]
    manifest = read_manifest(pytester.path / "cache" / "manifest.json")
    model = manifest["cells"][0]["model"]
    assert model["identifier"] == "openai/mock" and model["provider"] == "litellm"

    gated = pytester.runpytest_subprocess(*args, "--themis-fail-under=NumericMatch=0.8")
    gated.assert_outcomes(failed=1)
    gated.stdout.fnmatch_lines(["*NumericMatch mean 0.750*is not >= 0.8*"])
    assert server.request_count == 4  # type: ignore[attr-defined]  # second run: all cached
