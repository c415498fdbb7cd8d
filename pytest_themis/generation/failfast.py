"""Fail fast when nothing can succeed: an unreachable endpoint or refused credentials.

:class:`FailFastExecutor` wraps the runner's executor. The rule (also in the README, "Failures"):
for each model endpoint — (provider, api base, model) — that has not answered once in this run,
``threshold`` consecutive attempts failing with a connection error or an authentication error
trip it. From then on every task for that endpoint fails at once with
:class:`FailFastError` (permanent, so it is not retried), naming the cause, without sending.
Any other outcome (an answer, a rate limit, a server error, a bad request) resets the count, and
an endpoint that has answered once never trips: a mid-run outage is left to the retry policy.
Finished generations are stored as usual, so a rerun resumes from them.
"""

from __future__ import annotations

import threading
from typing import Any

from ..core.entities import GenerationTask, ProviderResponse
from ..errors import AuthenticationError, PermanentProviderError, ProviderConnectionError
from .executors import TaskExecutor

__all__ = ["DEFAULT_THRESHOLD", "FailFastError", "FailFastExecutor"]

#: Consecutive connection/authentication failures, with no success yet, that stop an endpoint.
DEFAULT_THRESHOLD = 8
_CAUSES = (ProviderConnectionError, AuthenticationError)


class FailFastError(PermanentProviderError):
    """Not sent: earlier requests to the same endpoint all failed to connect or authenticate."""


class _Endpoint:
    __slots__ = ("answered", "failures", "cause")

    def __init__(self) -> None:
        self.answered = False
        self.failures = 0
        self.cause: BaseException | None = None


class FailFastExecutor(TaskExecutor):
    """Wraps ``inner``; see the module docstring for the rule. ``threshold=0`` disables it."""

    def __init__(self, inner: TaskExecutor, *, threshold: int = DEFAULT_THRESHOLD) -> None:
        if threshold < 0:
            raise ValueError(f"threshold must be >= 0, got {threshold}")
        self.inner = inner
        self.threshold = threshold
        self._endpoints: dict[tuple[str, str | None, str], _Endpoint] = {}
        self._lock = threading.Lock()

    @property
    def supports_async(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.inner, "supports_async", False))

    def __getattr__(self, name: str) -> Any:
        # Everything else (a router's provider_for, is_default …) is the inner executor's.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    # -- bookkeeping ---------------------------------------------------------------------------

    def _endpoint(self, task: GenerationTask) -> _Endpoint:
        model = task.model
        key = (model.provider, model.api_base, model.identifier)
        with self._lock:
            found = self._endpoints.get(key)
            if found is None:
                found = self._endpoints[key] = _Endpoint()
            return found

    def _check(self, task: GenerationTask, endpoint: _Endpoint) -> None:
        if self.threshold and not endpoint.answered and endpoint.failures >= self.threshold:
            cause = endpoint.cause
            kind = "authenticate" if isinstance(cause, AuthenticationError) else "connect"
            raise FailFastError(
                f"not sent: the last {endpoint.failures} requests for model "
                f"{task.model.identifier!r} all failed to {kind} and none has succeeded, so "
                f"the rest of this run's requests for it are skipped (task {task.task_id}); "
                f"cause: {cause}",
                status_code=getattr(cause, "status_code", None),
                model=task.model.identifier,
            )

    def _record(self, endpoint: _Endpoint, exc: BaseException | None) -> None:
        with self._lock:
            if exc is None:
                endpoint.answered = True
                endpoint.failures = 0
            elif isinstance(exc, _CAUSES):
                endpoint.failures += 1
                endpoint.cause = exc
            elif not isinstance(exc, FailFastError):
                endpoint.failures = 0

    # -- TaskExecutor --------------------------------------------------------------------------

    def execute(self, task: GenerationTask, *, timeout: float | None = None) -> ProviderResponse:
        endpoint = self._endpoint(task)
        self._check(task, endpoint)
        try:
            response = self.inner.execute(task, timeout=timeout)
        except Exception as exc:
            self._record(endpoint, exc)
            raise
        self._record(endpoint, None)
        return response

    async def aexecute(
        self, task: GenerationTask, *, timeout: float | None = None
    ) -> ProviderResponse:
        endpoint = self._endpoint(task)
        self._check(task, endpoint)
        try:
            response = await self.inner.aexecute(task, timeout=timeout)
        except Exception as exc:
            self._record(endpoint, exc)
            raise
        self._record(endpoint, None)
        return response

    def close(self) -> None:
        self.inner.close()
