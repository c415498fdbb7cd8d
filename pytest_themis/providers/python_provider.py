"""Evaluate your own application: a Python callable as the "model" (registered as ``python``).

``PythonProvider(fn=my_app)`` calls ``fn`` once per task. The call shape is decided once, from
the signature:

* ``fn(prompt)`` — the last user message as a string (the default);
* ``fn(prompt, task)`` — a second required positional parameter receives the
  :class:`~pytest_themis.core.entities.GenerationTask`;
* parameters named ``messages`` or ``task`` are passed by keyword: ``messages`` gets the chat
  as a list of ``{"role", "content"}`` dicts, ``task`` the task.

``fn`` may be ``async def``; it may return a ``str``, a
:class:`~pytest_themis.core.entities.ProviderResponse` or a dict with ``"text"`` (and optional
``"usage"``, ``"cost"``, ``"finish_reason"``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from ..core.entities import GenerationTask, ProviderResponse, TokenUsage
from ..errors import (
    ConfigurationError,
    PermanentProviderError,
    ProviderError,
    ProviderTimeoutError,
)
from .base import Provider

__all__ = ["PythonProvider", "callable_name"]

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_KEYWORD_NAMES = ("messages", "task")


def callable_name(fn: Callable[..., Any]) -> str:
    """A readable name for ``fn``: ``module.qualname`` for functions, the class name otherwise."""
    target = fn.func if hasattr(fn, "func") and callable(fn.func) else fn  # functools.partial
    qualname = getattr(target, "__qualname__", None) or type(target).__name__
    module = getattr(target, "__module__", None)
    if module and module not in ("builtins", "__main__"):
        return f"{module}.{qualname}"
    return str(qualname)


def _is_async(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004  (callable objects with async __call__)
    return call is not None and inspect.iscoroutinefunction(call)


class PythonProvider(Provider):
    """Runs a user callable as the model. See the module docstring for accepted signatures."""

    name = "python"

    def __init__(self, fn: Callable[..., Any] | None = None) -> None:
        if fn is None or not callable(fn):
            raise ConfigurationError(
                f"python provider needs a callable, got {type(fn).__name__}; "
                "use create_provider('python', fn=my_app) where my_app(prompt) returns a string"
            )
        self.fn = fn
        self.callable_name = callable_name(fn)
        self.supports_async = _is_async(fn)
        self._pass_prompt, self._pass_task_positional, self._keywords = self._inspect(fn)

    def _inspect(self, fn: Callable[..., Any]) -> tuple[bool, bool, tuple[str, ...]]:
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):  # some builtins have no introspectable signature
            return True, False, ()
        keywords = tuple(
            p.name
            for p in params
            if p.name in _KEYWORD_NAMES and p.kind is not inspect.Parameter.POSITIONAL_ONLY
        )
        positional = [p for p in params if p.kind in _POSITIONAL and p.name not in keywords]
        has_varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
        required = [p for p in positional if p.default is inspect.Parameter.empty]
        if len(required) > 2:
            raise ConfigurationError(
                f"python provider: {self.callable_name} requires {len(required)} positional "
                f"arguments ({', '.join(p.name for p in required)}); it must accept fn(prompt), "
                "fn(prompt, task) or keyword 'messages='"
            )
        pass_prompt = bool(positional) or (has_varargs and not keywords)
        pass_task = len(required) == 2 and "task" not in keywords
        if not pass_prompt and not keywords:
            raise ConfigurationError(
                f"python provider: {self.callable_name} takes no arguments; it must accept "
                "fn(prompt), fn(prompt, task) or keyword 'messages='"
            )
        return pass_prompt, pass_task, keywords

    # -- calling ----------------------------------------------------------------------------

    def _arguments(self, task: GenerationTask) -> tuple[list[Any], dict[str, Any]]:
        args: list[Any] = []
        if self._pass_prompt:
            args.append(task.prompt_text)
        if self._pass_task_positional:
            args.append(task)
        kwargs: dict[str, Any] = {}
        if "messages" in self._keywords:
            kwargs["messages"] = [dict(m) for m in task.messages]
        if "task" in self._keywords:
            kwargs["task"] = task
        return args, kwargs

    def _wrap_exception(self, exc: Exception, task: GenerationTask) -> ProviderError:
        if isinstance(exc, ProviderError):
            return exc
        return PermanentProviderError(
            f"python provider: {self.callable_name} raised {type(exc).__name__}: {exc} "
            f"(task {task.task_id}); fix the callable, or raise "
            "pytest_themis.errors.TransientProviderError for failures worth retrying",
            model=task.model.identifier,
        )

    def generate(self, task: GenerationTask, *, timeout: float | None = None) -> ProviderResponse:
        """Call ``fn`` synchronously (an async ``fn`` runs on a private event loop)."""
        if self.supports_async:
            return _run_coroutine(self.agenerate(task, timeout=timeout))
        args, kwargs = self._arguments(task)
        try:
            result = self.fn(*args, **kwargs)
        except Exception as exc:
            raise self._wrap_exception(exc, task) from exc
        return self._convert(result, task)

    async def agenerate(
        self, task: GenerationTask, *, timeout: float | None = None
    ) -> ProviderResponse:
        """Await an async ``fn`` (honouring ``timeout``); a sync ``fn`` runs in a worker thread."""
        if not self.supports_async:
            return await asyncio.to_thread(self.generate, task, timeout=timeout)
        args, kwargs = self._arguments(task)
        try:
            result = await asyncio.wait_for(self.fn(*args, **kwargs), timeout)
        except asyncio.TimeoutError as exc:
            raise ProviderTimeoutError(
                f"python provider: {self.callable_name} did not answer task {task.task_id} "
                f"within {timeout:g}s",
                model=task.model.identifier,
            ) from exc
        except Exception as exc:
            raise self._wrap_exception(exc, task) from exc
        return self._convert(result, task)

    # -- results ----------------------------------------------------------------------------

    def _convert(self, result: Any, task: GenerationTask) -> ProviderResponse:
        if isinstance(result, ProviderResponse):
            if not isinstance(result.text, str):
                raise self._bad_return(
                    f"ProviderResponse with text of type {type(result.text).__name__}", task
                )
            return result
        if isinstance(result, str):
            return ProviderResponse(text=result, finish_reason="stop")
        if isinstance(result, Mapping):
            text = result.get("text")
            if not isinstance(text, str):
                raise self._bad_return(
                    f"dict whose 'text' is {type(text).__name__} (keys: "
                    f"{', '.join(map(str, result))})",
                    task,
                )
            return ProviderResponse(
                text=text,
                usage=self._usage(result.get("usage"), task),
                cost=self._cost(result.get("cost"), task),
                finish_reason=str(result.get("finish_reason") or "stop"),
            )
        raise self._bad_return(type(result).__name__, task)

    def _usage(self, usage: Any, task: GenerationTask) -> TokenUsage | None:
        if usage is None or isinstance(usage, TokenUsage):
            return usage
        if isinstance(usage, Mapping):
            try:
                return TokenUsage(
                    prompt_tokens=int(usage.get("prompt_tokens", 0) or 0),
                    completion_tokens=int(usage.get("completion_tokens", 0) or 0),
                )
            except (TypeError, ValueError):
                pass
        raise self._bad_return(
            f"dict with 'usage' of type {type(usage).__name__} (expected a TokenUsage or a dict "
            "with integer 'prompt_tokens'/'completion_tokens')",
            task,
        )

    def _cost(self, cost: Any, task: GenerationTask) -> float | None:
        if cost is None:
            return None
        if isinstance(cost, bool) or not isinstance(cost, (int, float)):
            raise self._bad_return(
                f"dict with 'cost' of type {type(cost).__name__} (expected a number)", task
            )
        return float(cost)

    def _bad_return(self, what: str, task: GenerationTask) -> ProviderError:
        return PermanentProviderError(
            f"python provider: {self.callable_name} returned a {what} for task {task.task_id}; "
            "return a str, a ProviderResponse or a dict with a 'text' string",
            model=task.model.identifier,
        )


def _run_coroutine(coro: Any) -> Any:
    """Run ``coro`` to completion from sync code, even when this thread has a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
