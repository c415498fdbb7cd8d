"""Retry policy and adaptive concurrency for provider calls."""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from dataclasses import dataclass

from ..errors import ProviderError

__all__ = ["AdaptiveLimiter", "FixedLimiter", "RetryPolicy"]


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter; never sooner than the server's Retry-After.

    Only :class:`~pytest_themis.errors.TransientProviderError` is retried — the decision uses the
    exception type, never its message.
    """

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    seed: int | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def delay(self, attempt: int, error: BaseException) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up."""
        if not isinstance(error, ProviderError) or not error.transient:
            return None
        if attempt > self.max_retries:
            return None
        backoff = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        wait = self._rng.uniform(backoff / 2, backoff)
        retry_after = error.retry_after
        if retry_after is not None and retry_after > 0:
            # A small margin keeps the next request strictly after the server's window.
            wait = max(wait, retry_after + 0.01)
        return wait


class FixedLimiter:
    """A plain concurrency cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._sem = asyncio.Semaphore(limit)

    async def acquire(self) -> None:
        await self._sem.acquire()

    def release(self) -> None:
        self._sem.release()

    def on_success(self) -> None:
        pass

    def on_rate_limit(self, retry_after: float | None) -> None:
        pass


class AimdWindow:
    """The arithmetic of adaptive concurrency (AIMD), without any waiting.

    Slow start: the window grows by one per success (doubling every round trip) until the first
    429. From then on it grows by one per ``limit`` successes (about one per round trip) and, on a
    429, drops to ``backoff`` × the number of requests that were in flight — the level the
    provider just refused — at most once per ``cooldown`` seconds, so one burst counts once.
    """

    def __init__(self, initial: int = 8, minimum: int = 1, maximum: int = 1024) -> None:
        self.limit = float(initial)
        self.minimum = minimum
        self.maximum = maximum
        self.slow_start = True
        self.cooldown = 0.5
        self.backoff = 0.95
        self._last_cut = 0.0

    def on_success(self) -> None:
        step = 1.0 if self.slow_start else 1 / max(1.0, self.limit)
        self.limit = min(float(self.maximum), self.limit + step)

    def on_rate_limit(self, in_flight: int) -> None:
        now = time.monotonic()
        self.slow_start = False
        if now - self._last_cut >= self.cooldown:
            ceiling = min(self.limit, float(max(in_flight, 1)))
            self.limit = max(float(self.minimum), ceiling * self.backoff)
            self._last_cut = now


class AdaptiveLimiter:
    """Adaptive concurrency for ``max_parallel="auto"`` on one event loop (see :class:`AimdWindow`).

    The refused request itself waits for its Retry-After in the runner.
    """

    def __init__(self, initial: int = 8, minimum: int = 1, maximum: int = 1024) -> None:
        self.window = AimdWindow(initial, minimum, maximum)
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> float:
        return self.window.limit

    async def acquire(self) -> None:
        if not self._waiters and self._has_slot():
            self.in_flight += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        await future

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def on_success(self) -> None:
        self.window.on_success()
        self._wake()

    def on_rate_limit(self, retry_after: float | None) -> None:
        self.window.on_rate_limit(self.in_flight)

    def _has_slot(self) -> bool:
        return self.in_flight < int(self.window.limit)

    def _wake(self) -> None:
        while self._waiters and self._has_slot():
            future = self._waiters.popleft()
            if not future.done():
                self.in_flight += 1
                future.set_result(None)
