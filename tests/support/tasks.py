"""Build generation tasks without a plan, for provider-level tests."""

from __future__ import annotations

from typing import Any

from pytest_themis.core.entities import CellSpec, GenerationTask, ModelSpec, SamplingConfig


def make_task(
    prompt: str,
    *,
    model: str = "openai/fake-chat",
    sampling: SamplingConfig | None = None,
    row_id: str = "row-1",
    system: str | None = None,
    **options: Any,
) -> GenerationTask:
    """A litellm task whose last user message is ``prompt``; ``options`` become model options."""
    spec = ModelSpec(identifier=model, provider="litellm", options=options)
    cell = CellSpec(model=spec, template_name="plain", sampling=sampling or SamplingConfig())
    messages: list[dict[str, str]] = []
    if system is not None:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    return GenerationTask(cell=cell, row_id=row_id, sample_index=0, messages=tuple(messages))
