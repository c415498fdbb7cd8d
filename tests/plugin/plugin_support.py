"""Helpers shared by the plugin's pytester tests (imported by name: tests are not a package)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

#: A python "model" that answers arithmetic and logs every call (one line per request) to the
#: file named by THEMIS_TEST_CALL_LOG, so tests can count generations across processes.
COUNTING_MODEL = """
import ast
import operator
import os

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _calc(node):
    if isinstance(node, ast.Expression):
        return _calc(node.body)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BinOp):
        return _OPS[type(node.op)](_calc(node.left), _calc(node.right))
    raise ValueError(node)


def answer(prompt):
    expr = prompt.rsplit(":", 1)[-1].strip()
    with open(os.environ["THEMIS_TEST_CALL_LOG"], "a") as log:
        log.write(prompt.replace("\\n", " ") + "\\n")
    return str(_calc(ast.parse(expr, mode="eval")))
"""

ROWS = [
    {"id": "r1", "q": "2+2", "a": "4"},
    {"id": "r2", "q": "3*5", "a": "15"},
    {"id": "r3", "q": "10-7", "a": "3"},
]


def calls(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line]


def read_manifest(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def base_args(pytester: pytest.Pytester) -> list[str]:
    """Flags every pytester run uses: an isolated cache and no pytest cache folder."""
    return ["-p", "no:cacheprovider", f"--themis-cache-dir={pytester.path / 'cache'}"]
