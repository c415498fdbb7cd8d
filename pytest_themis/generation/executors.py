"""Task executors: what the runner calls to turn one task into one response."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from ..core.entities import (
    ConversationMessage,
    GenerationTask,
    ProviderResponse,
    TokenUsage,
)

if TYPE_CHECKING:
    from .router import ProviderRouter

__all__ = ["ConversationSession", "StatefulTaskExecutor", "TaskExecutor"]


class TaskExecutor(ABC):
    """Anything the runner can hand a task to. Raise ``ProviderError`` subclasses on failure."""

    supports_async: bool = False

    @abstractmethod
    def execute(self, task: GenerationTask, *, timeout: float | None = None) -> ProviderResponse:
        """Blocking call."""

    async def aexecute(
        self, task: GenerationTask, *, timeout: float | None = None
    ) -> ProviderResponse:
        """Async call; by default :meth:`execute` in a worker thread."""
        return await asyncio.to_thread(self.execute, task, timeout=timeout)

    def close(self) -> None:
        """Release resources at the end of a run."""


class ConversationSession:
    """A multi-turn conversation with the task's model, used inside a stateful executor."""

    def __init__(self, task: GenerationTask, router: ProviderRouter, timeout: float | None) -> None:
        self.task = task
        self.messages: list[ConversationMessage] = list(task.messages)
        self.usage = TokenUsage()
        self.cost = 0.0
        self._router = router
        self._timeout = timeout

    def send(self, content: str | None = None) -> str:
        """Append ``content`` as a user turn (if given), ask the model, return its reply."""
        if content is not None:
            self.messages.append({"role": "user", "content": content})
        turn_task = GenerationTask(
            cell=self.task.cell,
            row_id=self.task.row_id,
            sample_index=self.task.sample_index,
            messages=tuple(self.messages),
            reference=self.task.reference,
            row=self.task.row,
        )
        response = self._router.execute(turn_task, timeout=self._timeout)
        self.messages.append({"role": "assistant", "content": response.text})
        if response.usage is not None:
            self.usage = self.usage + response.usage
        if response.cost:
            self.cost += response.cost
        return response.text


class StatefulTaskExecutor(TaskExecutor):
    """Base for multi-turn or agentic tasks: implement :meth:`run_episode`.

    The episode talks to the task's model through ``session.send(...)`` (tool results, feedback,
    follow-up questions …) and returns the final answer text, which is cached and scored like any
    single-turn response. Token usage and cost of every turn are summed.
    """

    def __init__(self, router: ProviderRouter | None = None) -> None:
        from .router import ProviderRouter  # deferred: the router imports TaskExecutor from here

        self.router = router if router is not None else ProviderRouter()

    @abstractmethod
    def run_episode(self, task: GenerationTask, session: ConversationSession) -> str:
        """Drive the conversation and return the final answer."""

    def execute(self, task: GenerationTask, *, timeout: float | None = None) -> ProviderResponse:
        session = ConversationSession(task, self.router, timeout)
        text = self.run_episode(task, session)
        return ProviderResponse(
            text=text, usage=session.usage, cost=session.cost, finish_reason="stop"
        )

    def close(self) -> None:
        self.router.close()
