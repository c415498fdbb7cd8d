"""Helpers shared by the reliability tests (imported by name: tests are not a package)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

#: The template every reliability dataset uses: the server answers ``#### <said>``.
TEMPLATE = "{question}\nEXPECTED: {said}"
#: A key that must never be written anywhere (cache, manifest, output, JUnit XML).
CANARY_KEY = "sk-canary-reliability-93f1c7d2e8"

#: A marker test evaluating the rows of ``data.jsonl`` with litellm models; the api base comes
#: from ``--themis-api-base``. The rows are read with ``json`` (a list of dicts in the marker), so
#: a child process does not pay for importing ``datasets``.
_MARKER_TEST = """
import json

import pytest

DATA = [json.loads(line) for line in open("data.jsonl", encoding="utf-8")]


@pytest.mark.themis(
    dataset=DATA,
    prompts={"ask": "{question}\\nEXPECTED: {said}"},
    models=MODELS,
    reference_field="gold",
    metrics=["exact_match"],
    extractor="gsm8k",
)
def test_eval(themis_report):
    assert themis_report.total == ROWS
"""


def rows(n: int, prefix: str = "q") -> list[dict[str, Any]]:
    """``n`` rows; the server echoes ``said`` and every third one differs from ``gold``."""
    out = []
    for i in range(n):
        said = i + 1 if i % 3 == 0 else i
        out.append(
            {"id": f"{prefix}{i:04d}", "question": f"{prefix} item {i}: {i} + 0?", "said": said,
             "gold": i}
        )  # fmt: skip
    return out


def prompt_of(row: Mapping[str, Any]) -> str:
    """The user message the server sees for ``row``."""
    return TEMPLATE.format(**row)


def write_jsonl(path: Path, items: Iterable[Mapping[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(dict(r)) + "\n" for r in items), encoding="utf-8")
    return path


def marker_test(models: Sequence[str], n_rows: int) -> str:
    """Source of a test module evaluating ``data.jsonl`` (``n_rows`` rows) with ``models``."""
    return f"MODELS = {list(models)!r}\nROWS = {n_rows}\n" + _MARKER_TEST


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for child processes: offline litellm and Hub, no bytecode, no colours."""
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PY_COLORS": "0",
    }
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    env.update(extra)
    return env


def pytest_command(*args: str) -> list[str]:
    """``python -m pytest`` with no cache provider plus ``args``."""
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]


def run_pytest(
    cwd: Path, *args: str, timeout: float = 120, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run pytest in ``cwd`` to completion; output captured as text."""
    return subprocess.run(
        pytest_command(*args),
        cwd=cwd,
        env=dict(env or subprocess_env()),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def files_containing(root: Path, needle: str) -> list[Path]:
    """Every file below ``root`` whose bytes contain ``needle``."""
    data = needle.encode()
    return [p for p in root.rglob("*") if p.is_file() and data in p.read_bytes()]
