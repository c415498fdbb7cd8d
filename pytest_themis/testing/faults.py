"""What the test server answers: the seeded fault plan, the stats it records, the responder."""

from __future__ import annotations

import argparse
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = [
    "OUTCOME_OF_RATE",
    "RATE_FIELDS",
    "FaultPlan",
    "Responder",
    "ServerStats",
    "content_text",
    "default_responder",
    "last_user_text",
    "parse_args",
]

Responder = Callable[[list[dict[str, Any]], dict[str, Any]], str]

RATE_FIELDS = (
    "rate_429",
    "rate_500",
    "rate_503",
    "rate_timeout",
    "rate_reset",
    "rate_malformed",
    "rate_empty_choices",
    "rate_length",
)
OUTCOME_OF_RATE = {
    "rate_429": "rate_limit",
    "rate_500": "error_500",
    "rate_503": "error_503",
    "rate_timeout": "timeout",
    "rate_reset": "reset",
    "rate_malformed": "malformed",
    "rate_empty_choices": "empty_choices",
    "rate_length": "length",
}


@dataclass
class FaultPlan:
    """What the server does wrong, and how often. Rates are shares of requests in ``[0, 1]``.

    The rate faults are mutually exclusive (one uniform draw per request), so their sum must not
    exceed 1. ``latency`` (seconds) delays every admitted request; ``timeout_delay`` is how long a
    ``timeout`` request stalls before it would answer; ``retry_after`` (seconds) is sent with
    every 429. ``status_for_model`` answers every request for a model with a fixed status.
    """

    latency: float = 0.0
    rate_429: float = 0.0
    retry_after: float = 1.0
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_timeout: float = 0.0
    timeout_delay: float = 30.0
    rate_reset: float = 0.0
    rate_malformed: float = 0.0
    rate_empty_choices: float = 0.0
    rate_length: float = 0.0
    max_concurrency: int | None = None
    status_for_model: dict[str, int] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        total = 0.0
        for name in RATE_FIELDS:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FaultPlan.{name} must be a share in [0, 1], got {value!r}")
            total += value
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"FaultPlan fault rates add up to {total:g} > 1; lower some of "
                f"{', '.join(RATE_FIELDS)}"
            )
        for name in ("latency", "retry_after", "timeout_delay"):
            if getattr(self, name) < 0:
                raise ValueError(f"FaultPlan.{name} must be >= 0 seconds")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ValueError("FaultPlan.max_concurrency must be >= 1 or None")

    def draw(self, key: str, attempt: int) -> str:
        """Outcome label of attempt number ``attempt`` (0-based) of the request ``key``."""
        bands = [(getattr(self, name), OUTCOME_OF_RATE[name]) for name in RATE_FIELDS]
        if not any(rate for rate, _ in bands):
            return "ok"
        u = random.Random(f"{self.seed}\x1f{attempt}\x1f{key}").random()
        edge = 0.0
        for rate, outcome in bands:
            edge += rate
            if u < edge:
                return outcome
        return "ok"


@dataclass
class ServerStats:
    """What the server saw. ``arrivals`` holds ``(time.monotonic(), prompt, outcome)`` tuples."""

    request_count: int = 0
    requests_by_prompt: Counter[str] = field(default_factory=Counter)
    max_in_flight: int = 0
    arrivals: list[tuple[float, str, str]] = field(default_factory=list)
    status_counts: Counter[int] = field(default_factory=Counter)
    outcome_counts: Counter[str] = field(default_factory=Counter)
    connections: int = 0

    def arrivals_by_prompt(self) -> dict[str, list[tuple[float, str]]]:
        """``{prompt: [(time, outcome), ...]}`` in arrival order."""
        out: dict[str, list[tuple[float, str]]] = {}
        for t, prompt, outcome in self.arrivals:
            out.setdefault(prompt, []).append((t, outcome))
        return out


def default_responder(messages: list[dict[str, Any]], request: dict[str, Any]) -> str:
    """Deterministic answer: ``#### <x>`` for a prompt line ``EXPECTED: <x>``, else an echo."""
    prompt = last_user_text(messages)
    for line in prompt.splitlines():
        stripped = line.strip()
        if stripped.startswith("EXPECTED:"):
            return f"#### {stripped[len('EXPECTED:') :].strip()}"
    head = " ".join(prompt.split())[:60]
    return f"Answer from {request.get('model', 'model')}: {head}"


def last_user_text(messages: Sequence[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    if messages and isinstance(messages[-1], dict):
        return content_text(messages[-1].get("content"))
    return ""


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_themis.testing.openai_server",
        description="Serve a fault-injecting OpenAI-compatible API on 127.0.0.1 until killed. "
        "The first line of stdout is the base URL.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    defaults = FaultPlan()
    for f in fields(FaultPlan):
        if f.name in ("status_for_model", "max_concurrency"):
            continue
        kind = int if f.name == "seed" else float
        parser.add_argument(
            "--" + f.name.replace("_", "-"), type=kind, default=getattr(defaults, f.name)
        )
    parser.add_argument("--max-concurrency", type=int, default=None)
    parser.add_argument(
        "--status-for-model",
        action="append",
        default=[],
        metavar="MODEL=STATUS",
        help="always answer requests for MODEL with STATUS (repeatable)",
    )
    return parser.parse_args(argv)
