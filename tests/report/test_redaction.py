"""Secrets never reach a report: HTML, Markdown, JSON (manifest, samples, ``themis export``).

Canaries sit where a user puts credentials: a model's ``api_key`` and headers (echoed back by a
careless server in a 401 message), a password in the ``api_base`` URL, and a token in the query
of the store's URL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_themis import evaluate
from pytest_themis.cli import main
from pytest_themis.core.entities import redact_url, url_secrets
from pytest_themis.report.html import render_html
from pytest_themis.report.markdown import format_markdown
from pytest_themis.report.redaction import run_secrets, scrub
from pytest_themis.report.runs import cell_results
from pytest_themis.testing import FaultPlan, OpenAIServer

pytestmark = pytest.mark.timeout(180)

KEY = "sk-canary-key-6a1f0c9e"
HEADER = "canary-header-3b7d21"
PASSWORD = "canary-password-9e4c55"
STORE_TOKEN = "canary-store-token-0d8a13"
CANARIES = (KEY, HEADER, PASSWORD, STORE_TOKEN)
ROWS = [{"id": f"r{i}", "q": f"item {i}\nEXPECTED: {i}", "gold": str(i)} for i in range(6)]


def _outputs(report: Any, tmp_path: Path, name: str) -> dict[str, str]:
    """Every report form of ``report``: manifest and samples JSON, HTML, Markdown."""
    report.to_jsonl(tmp_path / f"{name}.jsonl")
    return {
        "manifest": json.dumps(report.manifest),
        "samples": (tmp_path / f"{name}.jsonl").read_text(),
        "html": report.to_html(tmp_path / f"{name}.html").read_text(),
        "markdown": format_markdown(cell_results(report.manifest), run_id=report.run_id),
    }


def _assert_clean(outputs: dict[str, str]) -> None:
    for form, text in outputs.items():
        leaked = [c for c in CANARIES if c in text]
        assert not leaked, f"{form} shows {leaked}"


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_no_canary_in_any_report_of_a_run_on_a_store_url_with_a_token(
    tmp_path: Path,
    s3_server: Any,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    store = f"s3://{s3_bucket}/themis?X-Amz-Security-Token={STORE_TOKEN}"
    with OpenAIServer(FaultPlan(status_for_model={"locked": 401})) as server:
        report = evaluate(
            dataset=ROWS,
            model=["openai/fake-chat", "openai/locked"],
            prompt="{q}",
            reference_field="gold",
            metrics=["exact_match"],
            extractor="gsm8k",
            api_base=server.url,
            api_key=KEY,
            extra_headers={"X-Team-Token": HEADER},
            storage=store,
            run_id="secret-run",
        )
    errors = [r.generation.error for r in report.records if r.generation.error is not None]
    assert len(errors) == len(ROWS)  # the locked model's 401s, which echoed the credentials
    assert all("***" in e.message for e in errors), errors[0]
    outputs = _outputs(report, tmp_path, "run")
    html = tmp_path / "cli.html"
    outputs["themis show"] = _cli(capsys, "show", "secret-run", "--store", store)
    outputs["themis export"] = _cli(capsys, "export", "secret-run", "--store", store)
    argv = ("report", "secret-run", "-o", str(html), "--store", store)
    outputs["themis report"] = _cli(capsys, *argv)
    outputs["themis report html"] = html.read_text()
    _assert_clean(outputs)
    assert '"api_key": "***"' in outputs["manifest"]


def test_no_canary_when_the_api_base_carries_a_password(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        api_base = server.url.replace("://", f"://themis:{PASSWORD}@", 1)
        report = evaluate(
            dataset=ROWS,
            model="openai/fake-chat",
            prompt="{q}",
            reference_field="gold",
            metrics=["exact_match"],
            api_base=api_base,
            storage=tmp_path / "store",
            client="litellm",
            max_retries=0,
        )
    # the client refuses a password in the URL; its message names the URL, redacted
    messages = [r.generation.error.message for r in report.records if r.generation.error]
    assert messages and not [m for m in messages if PASSWORD in m]
    assert "themis:***@" in messages[0]
    _assert_clean(_outputs(report, tmp_path, "run"))
    shown = report.manifest["models"][0]["options"]["api_base"]
    assert shown == redact_url(api_base) and "themis:***@" in shown


def test_html_cuts_url_secrets_of_a_hand_made_manifest_out_of_every_text() -> None:
    """A manifest from a store that did not redact its URL: the secrets go from the page, also
    where a response echoes them."""
    manifest = {
        "run_id": "x",
        "cells": [],
        "models": [{"identifier": "m", "options": {"api_base": f"https://u:{PASSWORD}@h/v1"}}],
        "settings": {"cache": {"url": f"s3://b/p?X-Amz-Security-Token={STORE_TOKEN}&x=1"}},
    }
    row = {
        "experiment": "e", "cell_id": "c", "row_id": "r0", "epoch": 0, "scores": {},
        "response": f"the store token is {STORE_TOKEN} and <{PASSWORD}>",
    }  # fmt: skip
    assert run_secrets(manifest) == {PASSWORD, STORE_TOKEN}
    text = render_html(manifest, [row])
    assert PASSWORD not in text and STORE_TOKEN not in text
    assert "the store token is ***" in text
    assert scrub(manifest)["settings"]["cache"]["url"] == "s3://b/p?X-Amz-Security-Token=***&x=1"


@pytest.mark.parametrize(
    ("url", "secrets", "shown"),
    [
        ("s3://b/p?token=abcd&x=1", ["abcd"], "s3://b/p?token=***&x=1"),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA1&X-Amz-Signature=ffff",
            ["AKIA1", "ffff"],
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***",
        ),
        ("https://acct.blob.core.windows.net/c?sv=2022&sig=zzzz", ["zzzz"], "https://acct.blob.core.windows.net/c?sv=2022&sig=***"),
        ("https://u:pw12@h/v1?api-key=kkkk", ["pw12", "kkkk"], "https://u:***@h/v1?api-key=***"),
        ("https://h/v1?design=3", [], "https://h/v1?design=3"),
    ],
)  # fmt: skip
def test_url_secrets_and_redact_url_agree(url: str, secrets: list[str], shown: str) -> None:
    assert url_secrets(url) == secrets
    assert redact_url(url) == shown
