"""What a run hands the generation kernel (settings, budget, cancellation) and what a batch returns.

All of it is small, thread-safe where shared, and picklable where it travels (``RunSettings``
and ``BatchResult`` go to and from remote workers).
"""

from __future__ import annotations

import concurrent.futures
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..core.entities import GenerationError, GenerationRecord, GenerationTask
from ..errors import ConfigurationError
from .retry import RetryPolicy

__all__ = ["BatchResult", "Budget", "Cancellation", "Limiter", "RunSettings"]


class Limiter(Protocol):
    """A concurrency gate: :class:`FixedLimiter` or :class:`AdaptiveLimiter`."""

    async def acquire(self) -> None: ...
    def release(self) -> None: ...
    def on_success(self) -> None: ...
    def on_rate_limit(self, retry_after: float | None) -> None: ...


@dataclass(frozen=True)
class RunSettings:
    """How a run sends requests; frozen and picklable, so remote workers get the same rules."""

    max_parallel: int | str = 16
    max_retries: int = 3
    timeout: float | None = 60.0
    retry_base_delay: float = 0.5
    retry_max_delay: float = 30.0
    seed: int | None = None
    max_cost_usd: float | None = None
    #: HTTP client of litellm models in the default executor (``auto``/``litellm``/``native``;
    #: None: ``THEMIS_CLIENT`` where the requests are sent, else ``auto``).
    client: str | None = None

    def __post_init__(self) -> None:
        if self.client is not None:
            from ..providers.clients import check_client

            object.__setattr__(self, "client", check_client(self.client))
        mp = self.max_parallel
        if mp != "auto" and (isinstance(mp, bool) or not isinstance(mp, int) or mp < 1):
            raise ConfigurationError(
                f"max_parallel must be a positive integer or 'auto', got {mp!r}"
            )
        if self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigurationError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.max_cost_usd is not None and self.max_cost_usd < 0:
            raise ConfigurationError(f"max_cost_usd must be >= 0, got {self.max_cost_usd}")

    @property
    def adaptive(self) -> bool:
        """Whether ``max_parallel`` is ``"auto"`` (an AIMD window)."""
        return self.max_parallel == "auto"

    @property
    def fixed_limit(self) -> int | None:
        """The fixed concurrency cap, or None for ``"auto"``."""
        return None if self.adaptive else int(self.max_parallel)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_retries, self.retry_base_delay, self.retry_max_delay, self.seed)


class Budget:
    """Thread-safe spend tracking against ``max_cost_usd`` (None: no budget)."""

    def __init__(self, max_cost_usd: float | None = None) -> None:
        self.max_cost_usd = max_cost_usd
        self.spent_usd = 0.0
        self._lock = threading.Lock()

    @property
    def exhausted(self) -> bool:
        return self.max_cost_usd is not None and self.spent_usd >= self.max_cost_usd

    def charge(self, cost: float | None) -> None:
        if cost:
            with self._lock:
                self.spent_usd += cost

    def record(self, task: GenerationTask) -> GenerationRecord:
        """The error record of a task not sent because the budget was spent."""
        return GenerationRecord(
            task=task,
            error=GenerationError(
                kind="budget",
                type="BudgetExceededError",
                message=(
                    f"not sent: the cost budget of ${self.max_cost_usd:g} was spent "
                    f"(${self.spent_usd:.6g}); raise --themis-max-cost-usd / max_cost_usd"
                ),
            ),
        )


@dataclass
class BatchResult:
    """What a worker returns for one batch: one record per task, and how many 429s it saw."""

    records: list[GenerationRecord] = field(default_factory=list)
    rate_limited: int = 0


class Cancellation:
    """Cancels the batches run under it (:meth:`GenerationKernel.run_batch`), now and later.

    Thread-safe: a remote worker cancels a run's batches from another thread when the driver
    has stopped reading the run's records.
    """

    def __init__(self) -> None:
        self.cancelled = False
        self._running: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            running, self._running = self._running, set()
        for future in running:
            future.cancel()

    def add(self, future: concurrent.futures.Future[Any]) -> None:
        """Cancel ``future`` with the others (at once, when already cancelled)."""
        with self._lock:
            if not self.cancelled:
                self._running.add(future)
                return
        future.cancel()

    def discard(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._running.discard(future)
