"""A deterministic, offline provider for demos and tests (registered as ``fake``).

Behaviour is a pure function of the model name and the prompt:

* a prompt containing one of the shipped demo questions gets a short worked solution ending in
  ``#### <answer>``;
* a prompt that is a bare arithmetic expression (``"2+2"``, ``"What is 7*6?"``, or an
  instruction followed by one, ``"Think step-by-step. 2+2"``) gets just the number;
* anything else gets ``"fake answer to: <first 40 characters>"``.

A fixed share of demo and arithmetic answers is wrong (``wrong_rate``, default 0.2), chosen by a
SHA-256 hash of (model name, question) so every name has its own, stable set of mistakes. The
model name ``fake-oracle`` is never wrong.

Options (factory keyword arguments, overridden per task by ``ModelSpec.options``):
``wrong_rate`` (0..1), ``latency`` (seconds per request), ``fail_rate`` (0..1 share of tasks that
always raise :class:`~pytest_themis.errors.ServerError`) and ``error`` (``"auth"`` raises
:class:`~pytest_themis.errors.AuthenticationError` on every request; ``"rate_limit"``,
``"server"``, ``"timeout"`` and ``"bad_request"`` raise the matching error).
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import json
import math
import operator
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..core.entities import GenerationTask, ProviderResponse, TokenUsage
from ..errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from .base import Provider

__all__ = ["ORACLE_MODEL", "FakeProvider", "evaluate_arithmetic"]

ORACLE_MODEL = "fake-oracle"
DEFAULT_WRONG_RATE = 0.2
_DEMO_FILE = Path(__file__).resolve().parent.parent / "presets" / "data" / "demo.jsonl"

_ERRORS: dict[str, Callable[[str, str], ProviderError]] = {
    "auth": lambda model, msg: AuthenticationError(msg, status_code=401, model=model),
    "rate_limit": lambda model, msg: RateLimitError(msg, status_code=429, model=model),
    "server": lambda model, msg: ServerError(msg, status_code=500, model=model),
    "timeout": lambda model, msg: ProviderTimeoutError(msg, model=model),
    "bad_request": lambda model, msg: BadRequestError(msg, status_code=400, model=model),
}
_OPTION_NAMES = ("wrong_rate", "latency", "fail_rate", "error")


# --------------------------------------------------------------------------------------------
# Safe arithmetic
# --------------------------------------------------------------------------------------------

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_PREFIX = re.compile(
    r"^(?:what\s+is|what's|compute|calculate|evaluate|solve)\s*:?\s*", flags=re.IGNORECASE
)
_SENTENCE_END = re.compile(r"(?:[.:;!?]\s+|\n)")
_ALLOWED_CHARS = re.compile(r"^[\d\s.+\-*/%()]+$")
_MAX_MAGNITUDE = 1e15


def _eval_node(node: ast.AST) -> int | float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value  # type: ignore[return-value]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval_node(node.operand))  # type: ignore[no-any-return]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval_node(node.left), _eval_node(node.right)
        if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > 10**6):
            raise ValueError("exponent too large")
        value = _BINARY[type(node.op)](left, right)
        if isinstance(value, complex) or abs(value) > _MAX_MAGNITUDE:
            raise ValueError("result out of range")
        return value  # type: ignore[no-any-return]
    raise ValueError(f"unsupported expression element {type(node).__name__}")


def _evaluate_expression(text: str) -> int | float | None:
    expr = _PREFIX.sub("", text.strip()).strip()
    expr = expr.rstrip("?=. ").strip()
    expr = expr.replace("×", "*").replace("÷", "/").replace("^", "**")
    if not expr or not _ALLOWED_CHARS.match(expr) or not re.search(r"[+\-*/%]", expr):
        return None
    try:
        tree = ast.parse(expr, mode="eval")
        value = _eval_node(tree.body)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, TypeError):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def evaluate_arithmetic(text: str) -> int | float | None:
    """Value of ``text`` if it is a bare arithmetic expression, else ``None``.

    Accepts ``"2+2"``, ``"What is 7*6?"`` and an instruction followed by an expression
    (``"Think step-by-step. 2+2"``). Parsed with :mod:`ast`; only numbers and
    ``+ - * / // % **`` (exponent <= 64) are allowed.
    """
    value = _evaluate_expression(text)
    if value is None:
        parts = _SENTENCE_END.split(text.strip())
        if len(parts) > 1:
            value = _evaluate_expression(parts[-1])
    return value


def _format_number(value: int | float) -> str:
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return f"{value:.10g}"
    return str(value)


# --------------------------------------------------------------------------------------------
# Demo questions
# --------------------------------------------------------------------------------------------


def _normalise(text: str) -> str:
    return " ".join(text.split())


@lru_cache(maxsize=1)
def _demo_questions() -> tuple[tuple[str, str, int], ...]:
    """(id, normalised question, answer) of every shipped demo problem."""
    entries = []
    with _DEMO_FILE.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                entries.append((str(row["id"]), _normalise(row["question"]), int(row["answer"])))
    return tuple(entries)


def _find_demo_question(prompt: str) -> tuple[str, int] | None:
    text = _normalise(prompt)
    for question_id, question, answer in _demo_questions():
        if question in text:
            return question_id, answer
    return None


# --------------------------------------------------------------------------------------------
# The provider
# --------------------------------------------------------------------------------------------


def _unit_hash(*parts: str) -> float:
    """A stable number in [0, 1) derived from ``parts`` (SHA-256, never ``hash()``)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class _Settings:
    wrong_rate: float = DEFAULT_WRONG_RATE
    latency: float = 0.0
    fail_rate: float = 0.0
    error: str | None = None


def _check_options(options: Mapping[str, Any], where: str, *, strict: bool) -> dict[str, Any]:
    known: dict[str, Any] = {}
    for name, value in options.items():
        if name not in _OPTION_NAMES:
            if strict:
                raise ConfigurationError(
                    f"fake provider: unknown option {name!r} ({where}); "
                    f"valid options: {', '.join(_OPTION_NAMES)}"
                )
            continue
        if name == "error":
            if value is not None and value not in _ERRORS:
                raise ConfigurationError(
                    f"fake provider: option 'error' ({where}) is {value!r}; "
                    f"use one of {', '.join(sorted(_ERRORS))} or None"
                )
        elif name in ("wrong_rate", "fail_rate"):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (0.0 <= value <= 1.0)
            ):
                raise ConfigurationError(
                    f"fake provider: option {name!r} ({where}) must be a number between 0 and 1, "
                    f"got {value!r}"
                )
            value = float(value)
        elif name == "latency":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigurationError(
                    f"fake provider: option 'latency' ({where}) must be a number of seconds >= 0, "
                    f"got {value!r}"
                )
            value = float(value)
        known[name] = value
    return known


class FakeProvider(Provider):
    """Deterministic offline model; see the module docstring for its behaviour and options."""

    name = "fake"
    supports_async = True

    def __init__(self, **options: Any) -> None:
        self._defaults = _check_options(options, "provider options", strict=True)
        self._settings_cache: dict[tuple[tuple[str, Any], ...], _Settings] = {}

    # -- settings ---------------------------------------------------------------------------

    def _settings(self, task: GenerationTask) -> _Settings:
        task_options = task.model.options
        key = tuple(sorted((k, repr(v)) for k, v in task_options.items() if k in _OPTION_NAMES))
        cached = self._settings_cache.get(key)
        if cached is None:
            merged = dict(self._defaults)
            where = f"ModelSpec.options of {task.model.identifier!r}"
            merged.update(_check_options(task_options, where, strict=False))
            cached = _Settings(**merged)
            self._settings_cache[key] = cached
        return cached

    # -- answering --------------------------------------------------------------------------

    def answer(self, task: GenerationTask) -> ProviderResponse:
        """The response for ``task`` without latency or injected failures."""
        settings = self._settings(task)
        model = task.model.identifier
        prompt = task.prompt_text
        rate = 0.0 if model == ORACLE_MODEL else settings.wrong_rate

        demo = _find_demo_question(prompt)
        if demo is not None:
            question_id, gold = demo
            answer = (
                _wrong(gold, model, question_id) if _unit_hash(model, question_id) < rate else gold
            )
            text = (
                "Let me work through the problem step by step.\n"
                "Combining the quantities given in the question, "
                f"the result is {answer}.\n#### {answer}"
            )
        else:
            value = evaluate_arithmetic(prompt)
            if value is not None:
                key = "expr:" + _normalise(prompt)
                if _unit_hash(model, key) < rate:
                    value = _wrong(value, model, key)
                text = _format_number(value)
            else:
                text = f"fake answer to: {prompt[:40]}"
        return self._finish(task, text)

    def _finish(self, task: GenerationTask, text: str) -> ProviderResponse:
        finish_reason = "stop"
        stop = task.sampling.stop
        if stop:
            cuts = [text.find(s) for s in stop if s and s in text]
            if cuts:
                text = text[: min(cuts)]
        words = text.split()
        limit = task.sampling.max_tokens
        if limit is not None and len(words) > limit:
            text = " ".join(words[:limit])
            words = words[:limit]
            finish_reason = "length"
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in task.messages)
        usage = TokenUsage(prompt_tokens=prompt_tokens, completion_tokens=len(words))
        return ProviderResponse(text=text, usage=usage, cost=0.0, finish_reason=finish_reason)

    def _raise_injected(self, task: GenerationTask, settings: _Settings) -> None:
        model = task.model.identifier
        if settings.error is not None:
            raise _ERRORS[settings.error](
                model,
                f"fake provider: injected {settings.error!r} error for model {model!r} "
                "(remove the 'error' option to get answers)",
            )
        if settings.fail_rate and (
            _unit_hash(model, "fail", task.row_id, str(task.sample_index)) < settings.fail_rate
        ):
            raise ServerError(
                f"fake provider: injected server error for task {task.task_id} "
                f"(fail_rate={settings.fail_rate:g})",
                status_code=500,
                model=model,
            )

    def _timeout_error(self, task: GenerationTask, timeout: float) -> ProviderTimeoutError:
        return ProviderTimeoutError(
            f"fake provider: task {task.task_id} took longer than the {timeout:g}s timeout "
            "(latency option)",
            model=task.model.identifier,
        )

    def generate(self, task: GenerationTask, *, timeout: float | None = None) -> ProviderResponse:
        settings = self._settings(task)
        if settings.latency:
            if timeout is not None and settings.latency > timeout:
                time.sleep(timeout)
                raise self._timeout_error(task, timeout)
            time.sleep(settings.latency)
        self._raise_injected(task, settings)
        return self.answer(task)

    async def agenerate(
        self, task: GenerationTask, *, timeout: float | None = None
    ) -> ProviderResponse:
        settings = self._settings(task)
        if settings.latency:
            if timeout is not None and settings.latency > timeout:
                await asyncio.sleep(timeout)
                raise self._timeout_error(task, timeout)
            await asyncio.sleep(settings.latency)
        self._raise_injected(task, settings)
        return self.answer(task)


def _wrong(value: int | float, model: str, key: str) -> int | float:
    """A deterministic wrong answer: ``value`` moved by a non-zero offset in [-3, 3]."""
    step = 1 + int(_unit_hash(model, key, "offset") * 3)
    sign = -1 if _unit_hash(model, key, "sign") < 0.5 and value - step >= 0 else 1
    return value + sign * step
