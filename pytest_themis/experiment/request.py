"""One request for one evaluation, whichever door it came through.

``evaluate()`` and the pytest plugin parse their inputs into an :class:`EvaluationRequest` (small
frozen config objects) and hand it to :func:`pytest_themis.experiment.builder.build_orchestrator`.
The parsing rules both doors share — prompt naming, sampling lists — live here too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.defaults import (
    CACHE_MODES,
    DEFAULT_CACHE_DIR,
    DEFAULT_CACHE_MODE,
    DEFAULT_MAX_PARALLEL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
)
from ..core.entities import CellSpec, ModelSpec, SamplingConfig
from ..core.protocols import EvaluationPipelineProtocol
from ..errors import ConfigurationError
from ..generation.templates import PromptTemplate

__all__ = [
    "CacheSettings",
    "DatasetConfig",
    "EvaluationRequest",
    "PlanAxes",
    "RunSettings",
    "ScoringConfig",
    "parse_prompts",
    "parse_samplings",
]


@dataclass(frozen=True)
class DatasetConfig:
    """The rows to evaluate (already loaded), where they came from, and their key fields."""

    rows: Sequence[Mapping[str, Any]]
    info: Mapping[str, Any] = field(default_factory=dict)
    id_field: str = "id"
    reference_field: str | None = None


@dataclass(frozen=True)
class PlanAxes:
    """The plan's axes: every model × template × sampling config is a cell."""

    templates: tuple[PromptTemplate, ...]
    models: tuple[ModelSpec, ...]
    samplings: tuple[SamplingConfig, ...] = (SamplingConfig(),)
    num_samples: int = 1


@dataclass(frozen=True)
class ScoringConfig:
    """A ready pipeline, or the metrics (names or instances) and extractor to build one from.

    ``on_engine`` scores on the run's execution backend (Ray, Dask) instead of in this process.
    """

    pipeline: EvaluationPipelineProtocol | None = None
    metrics: tuple[Any, ...] = ()
    extractor: Any = "identity"
    on_engine: bool = False

    def __post_init__(self) -> None:
        if self.pipeline is None and not self.metrics:
            raise ConfigurationError(
                "no metrics: pass metrics=['exact_match', ...] or an evaluation pipeline"
            )
        if not isinstance(self.on_engine, bool):
            raise ConfigurationError(
                f"score_on_engine must be True or False, got {self.on_engine!r}"
            )


@dataclass(frozen=True)
class RunSettings:
    """How requests are sent: parallelism, retries, timeout, budget, processes, backend, client.

    ``execution_backend`` is an ``ExecutionBackend``, a registered backend name or None.
    ``client`` is the HTTP client of litellm models (``auto``, ``litellm``, ``native``; None:
    ``$THEMIS_CLIENT`` or ``auto``) — transport only, outside the cache key.
    """

    max_parallel: int | str = DEFAULT_MAX_PARALLEL
    max_retries: int = DEFAULT_MAX_RETRIES
    timeout: float | None = DEFAULT_TIMEOUT
    max_cost_usd: float | None = None
    processes: int | str = "auto"
    execution_backend: Any = None
    client: str | None = None


@dataclass(frozen=True)
class CacheSettings:
    """The generation cache: ``mode`` (see ``CACHE_MODES``) and ``storage`` (folder or backend)."""

    mode: str = DEFAULT_CACHE_MODE
    storage: Any = DEFAULT_CACHE_DIR

    def __post_init__(self) -> None:
        if self.mode not in CACHE_MODES:
            raise ConfigurationError(
                f"unknown cache mode {self.mode!r}; use one of {', '.join(CACHE_MODES)}"
            )

    @property
    def effective_mode(self) -> str:
        """``off`` when there is no storage, else ``mode``."""
        return "off" if self.storage is None else self.mode


@dataclass(frozen=True)
class EvaluationRequest:
    """Everything one evaluation needs; :func:`~.builder.build_orchestrator` assembles it.

    ``cells`` restricts the run to some of the plan's cells (None: all of them).
    """

    experiment: str
    dataset: DatasetConfig
    plan: PlanAxes
    scoring: ScoringConfig
    run: RunSettings = RunSettings()
    cache: CacheSettings = CacheSettings()
    cells: tuple[CellSpec, ...] | None = None
    run_id: str | None = None


# -- parsing rules shared by both doors ---------------------------------------------------------


def parse_prompts(value: Any, default: PromptTemplate | None = None) -> tuple[PromptTemplate, ...]:
    """Templates from a str, a ``PromptTemplate``, a list of them, or a dict ``name -> prompt``.

    A single prompt is named ``prompt``; the prompts of a longer list ``prompt0``, ``prompt1`` …;
    a dict's keys name its prompts (renaming a ``PromptTemplate`` value). Anything that is not a
    str or a ``PromptTemplate`` is rejected. ``None`` falls back to ``default``.
    """
    if value is None:
        if default is None:
            raise ConfigurationError(
                "no prompt given: pass a template such as '... {field} ...' (a str, a "
                "PromptTemplate, a list of them or a dict name -> template)"
            )
        return (default,)
    if isinstance(value, (str, PromptTemplate)):
        value = [value]
    if isinstance(value, Mapping):
        if not value:
            raise ConfigurationError("prompts={} is empty; give at least one template")
        return tuple(_named(text, str(name), f"prompts[{name!r}]") for name, text in value.items())
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)) and value:
        out = []
        for i, item in enumerate(value):
            name = "prompt" if len(value) == 1 else f"prompt{i}"
            out.append(
                item if isinstance(item, PromptTemplate) else _named(item, name, f"prompts[{i}]")
            )
        return tuple(out)
    raise ConfigurationError(
        f"prompts must be a str, a PromptTemplate, a non-empty list or a dict, got {value!r}"
    )


def _named(item: Any, name: str, where: str) -> PromptTemplate:
    if isinstance(item, PromptTemplate):
        return dataclasses.replace(item, name=name)
    if isinstance(item, str):
        return PromptTemplate(name=name, template=item)
    raise ConfigurationError(f"{where} must be a str or PromptTemplate, got {type(item).__name__}")


_SAMPLING_FIELDS = tuple(f.name for f in dataclasses.fields(SamplingConfig))


def parse_samplings(value: Any, base: SamplingConfig | None = None) -> tuple[SamplingConfig, ...]:
    """Sampling configs from a ``SamplingConfig``, a dict of its fields, or a list of them.

    A dict overrides fields of ``base`` (the preset's sampling, else the defaults).
    """
    base = base or SamplingConfig()
    if value is None:
        return (base,)
    items = [value] if isinstance(value, (SamplingConfig, Mapping)) else list(value)
    if not items:
        return (base,)
    out: list[SamplingConfig] = []
    for i, item in enumerate(items):
        if isinstance(item, SamplingConfig):
            out.append(item)
        elif isinstance(item, Mapping):
            unknown = sorted(set(item) - set(_SAMPLING_FIELDS))
            if unknown:
                raise ConfigurationError(
                    f"sampling[{i}] has unknown key(s) {', '.join(unknown)}; accepted: "
                    f"{', '.join(sorted(_SAMPLING_FIELDS))}"
                )
            try:
                out.append(dataclasses.replace(base, **dict(item)))
            except TypeError as exc:
                raise ConfigurationError(f"sampling[{i}]: {exc}") from None
        else:
            raise ConfigurationError(f"sampling[{i}] must be a SamplingConfig or a dict")
    return tuple(out)
