"""Child-process side of :class:`~pytest_themis.evaluation.metrics.math_verify.MathVerifyAccuracy`.

Imported only inside worker processes (and their forkserver): it loads math-verify and sympy
and warms their lazy caches so that forked workers start scoring immediately. math-verify's own
signal-based timeouts are disabled; the parent enforces a wall-clock timeout per item.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from math_verify import parse, verify

__all__ = ["score_pair", "wrap_for_parse"]

logging.getLogger("math_verify").setLevel(logging.CRITICAL)

_DELIMITERS = ("$", "\\(", "\\[", "\\boxed", "\\fbox")


def wrap_for_parse(text: str) -> list[str]:
    """Strings to try parsing, best first: plain answers get math delimiters added."""
    stripped = text.strip()
    if any(d in stripped for d in _DELIMITERS):
        return [stripped]
    return [f"${stripped}$", f"\\boxed{{{stripped}}}", stripped]


@lru_cache(maxsize=2048)
def _parse_cached(text: str) -> tuple[Any, ...]:
    # The same gold answer is usually scored many times (models × prompts × samples).
    for candidate in wrap_for_parse(text):
        parsed = parse(candidate, parsing_timeout=None)  # type: ignore[arg-type]
        if parsed:
            return tuple(parsed)
    return ()


def _parse(text: str) -> list[Any]:
    return list(_parse_cached(text))


def score_pair(payload: tuple[str, str]) -> tuple[float, dict[str, Any]]:
    """``(gold, prediction)`` → ``(1.0 | 0.0, details)``; gold is passed to ``verify`` first."""
    gold_text, pred_text = payload
    gold = _parse(gold_text)
    if not gold:
        return 0.0, {"gold_unparsed": True}
    pred = _parse(pred_text)
    if not pred:
        return 0.0, {"prediction_unparsed": True}
    correct = verify(gold, pred, timeout_seconds=None)  # type: ignore[arg-type]
    details: dict[str, Any] = {}
    if isinstance(pred[-1], str):
        details["parsed"] = pred[-1][:120]
    return (1.0 if correct else 0.0), details


def _warm_up() -> None:
    """Run the lazily loaded sympy/latex code paths once, in the host, before it forks."""
    for gold, pred in (
        ("\\frac{1}{2}", "0.5"),
        ("3", "4"),
        ("2\\sqrt{3}", "\\sqrt{3} \\cdot 2"),
        ("(1, 2]", "\\left(1,2\\right]"),
        ("[0, \\infty)", "[0,\\infty)"),
        ("x^2 + 2x + 1", "(x+1)^2"),
        ("3\\pi", "\\pi \\cdot 3"),
        ("\\{1, 2\\}", "\\{2, 1\\}"),
    ):
        try:
            score_pair((gold, pred))
        except Exception:  # pragma: no cover - warm-up is best effort
            pass


_warm_up()
