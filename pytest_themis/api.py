"""Level 1 and 2: :func:`evaluate` — one call from a benchmark name or your rows to a report.

``evaluate()`` only parses its arguments into an
:class:`~pytest_themis.experiment.request.EvaluationRequest`; the builder assembles the run.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .backends.execution import ExecutionBackend
from .backends.storage import StorageBackend
from .core.defaults import (
    DEFAULT_CACHE_DIR,
    DEFAULT_CACHE_MODE,
    DEFAULT_MAX_PARALLEL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
)
from .core.entities import ModelSpec, SamplingConfig
from .core.reports import ExperimentReport
from .errors import ConfigurationError
from .experiment.request import (
    CacheSettings,
    DatasetConfig,
    EvaluationRequest,
    PlanAxes,
    RunSettings,
    ScoringConfig,
    parse_prompts,
)
from .generation.templates import PromptTemplate
from .providers.models import PROVIDER_OPTIONS, check_provider_options, parse_model

__all__ = ["DEFAULT_CACHE_DIR", "PROVIDER_OPTIONS", "evaluate", "parse_model"]


def evaluate(
    benchmark_or_dataset: str | Sequence[Mapping[str, Any]] | None = None,
    *,
    dataset: Sequence[Mapping[str, Any]] | str | os.PathLike[str] | None = None,
    model: Any = None,
    prompt: str | PromptTemplate | Sequence[Any] | Mapping[str, Any] | None = None,
    reference_field: str | None = None,
    id_field: str | None = None,
    metrics: Sequence[Any] | None = None,
    extractor: Any = None,
    evaluation_pipeline: Any = None,
    limit: int | None = None,
    temperature: float | Sequence[float] = 0.0,
    max_tokens: int | None = None,
    num_samples: int = 1,
    max_parallel: int | str = DEFAULT_MAX_PARALLEL,
    max_retries: int = DEFAULT_MAX_RETRIES,
    timeout: float | None = DEFAULT_TIMEOUT,
    storage: str | os.PathLike[str] | StorageBackend | None = DEFAULT_CACHE_DIR,
    execution_backend: ExecutionBackend | str | None = None,
    storage_backend: StorageBackend | None = None,
    run_id: str | None = None,
    resume: bool | None = None,
    cache: str = DEFAULT_CACHE_MODE,
    max_cost_usd: float | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[Any], None] | None = None,
    baseline: Any = None,
    client: str | None = None,
    score_on_engine: bool = False,
    **provider_options: Any,
) -> ExperimentReport:
    """Run a benchmark preset or your own rows against one or more models and score them.

    ``evaluate("gsm8k", model="openai/gpt-4o-mini")`` uses the preset's data, prompt, extractor
    and metrics; ``evaluate(dataset=rows, prompt="... {question}", reference_field="answer",
    metrics=["exact_match"], model=...)`` evaluates your rows. Generations are cached in
    ``storage`` (a folder, a store URL such as ``postgresql://user@host/db`` or
    ``s3://bucket/prefix``, or a ``StorageBackend``; None disables the cache), so a rerun is free
    and an interrupted run resumes; ``cache`` picks the mode (use, refresh, off, replay).
    ``prompt`` follows the marker's rule: one template is named ``prompt``, a list's are
    ``prompt0``, ``prompt1`` …, a dict's keys name them; values must be str or PromptTemplate. Extra
    keyword arguments are provider options (``api_base``, ``api_key`` …); unknown ones are
    rejected. ``execution_backend`` is an ``ExecutionBackend`` or a name: ``"local"`` (the
    default), ``"ray"``, ``"ray://host:port"``, ``"dask://host:port"``, ``"threads"``,
    ``"sequential"`` or one a plugin adds. ``storage_backend=`` and ``resume=`` are deprecated
    spellings of ``storage=`` and ``cache="refresh"``. Each run's per-sample results are kept in
    the store by run id; ``baseline`` (an earlier report, manifest path, run id or ``latest``) is
    loaded before anything is generated and the comparison lands in ``report.comparison``.
    ``client`` picks the HTTP client of litellm models: ``"auto"`` (the default: the native
    OpenAI client for ``openai/<model>`` with an ``api_base``), ``"litellm"`` or ``"native"``; it
    is transport only, so cached generations are shared. ``score_on_engine=True`` scores on the
    Ray/Dask ``execution_backend``'s workers too (each metric's per-sample timeout still holds;
    LLM judges stay in this process).
    """
    from .comparison.runs import finish_run, resolve_baseline
    from .experiment.builder import build_orchestrator

    if storage_backend is not None:
        _deprecated("storage_backend=", "storage=")
        storage = storage_backend
    if resume is not None:
        _deprecated("resume=", "cache='refresh' (instead of resume=False)")
        if not resume and cache == "use":
            cache = "refresh"
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ConfigurationError(f"limit must be a non-negative integer, got {limit!r}")
    if benchmark_or_dataset is not None and dataset is not None:
        raise ConfigurationError(
            "pass either a benchmark name / rows positionally or dataset=, not both"
        )
    source = benchmark_or_dataset if benchmark_or_dataset is not None else dataset
    if source is None:
        raise ConfigurationError("nothing to evaluate: pass a benchmark name or dataset=[...]")
    rows, preset, info = _load_source(source, limit, data_dir)
    request = EvaluationRequest(
        experiment=preset.name if preset is not None else "evaluate",
        dataset=DatasetConfig(
            rows=rows,
            info=info,
            id_field=id_field or (preset.id_field if preset is not None else "id"),
            reference_field=reference_field
            or (preset.reference_field if preset is not None else None),
        ),
        plan=PlanAxes(
            templates=parse_prompts(prompt, preset.prompt if preset is not None else None),
            models=_models(model, preset, provider_options),
            samplings=_samplings(temperature, max_tokens, preset),
            num_samples=num_samples,
        ),
        scoring=_scoring(evaluation_pipeline, metrics, extractor, preset, score_on_engine),
        run=RunSettings(
            max_parallel=max_parallel,
            max_retries=max_retries,
            timeout=timeout,
            max_cost_usd=max_cost_usd,
            execution_backend=execution_backend,
            client=client,
        ),
        cache=CacheSettings(mode=cache, storage=storage),
        run_id=run_id,
    )
    assembled = build_orchestrator(request)
    cache_manager = assembled.orchestrator.cache
    try:
        baseline_run = resolve_baseline(baseline, cache_manager)
    except BaseException:
        assembled.orchestrator.runner.close()
        raise
    # The samples are kept in the run's store while it is still open.
    return assembled.run(
        progress=progress,
        finish=lambda report: finish_run(report, baseline_run, cache_manager),
    )


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"evaluate({old}) is deprecated; use {new}", DeprecationWarning, stacklevel=3)


def _load_source(
    source: Any, limit: int | None, data_dir: str | os.PathLike[str] | None
) -> tuple[list[Any], Any, dict[str, Any]]:
    """Rows, preset (or None) and dataset description of a preset name, a file or rows."""
    if isinstance(source, str) and not Path(source).suffix:
        from .presets import get_benchmark_preset

        preset = get_benchmark_preset(source)
        rows = list(preset.load(limit=limit, data_dir=data_dir))
        return rows, preset, dict(preset.describe_source(data_dir), name=preset.name)
    if isinstance(source, (str, os.PathLike)):
        from .presets.loading import load_local_file

        rows = list(load_local_file(source, limit=limit))
        return rows, None, {"name": Path(source).name, "source": str(source)}
    rows = list(source)
    return (rows[:limit] if limit is not None else rows), None, {}


def _models(model: Any, preset: Any, provider_options: dict[str, Any]) -> tuple[ModelSpec, ...]:
    if model is None and preset is not None and preset.default_model:
        model = preset.default_model
    if model is None:
        raise ConfigurationError("no model given: pass model='openai/gpt-4o-mini' (or 'fake:NAME')")
    models_in = model if isinstance(model, (list, tuple)) else [model]
    models = tuple(parse_model(m, **provider_options) for m in models_in)
    check_provider_options(models, provider_options)
    return models


def _samplings(
    temperature: float | Sequence[float], max_tokens: int | None, preset: Any
) -> tuple[SamplingConfig, ...]:
    many = isinstance(temperature, (list, tuple))
    given: list[Any] = list(temperature) if many else [temperature]  # type: ignore[arg-type]
    temps: list[float] = []
    for t in given:
        if isinstance(t, bool) or not isinstance(t, (int, float)):
            raise ConfigurationError(
                f"temperature must be a number >= 0 or a list of them, got {t!r}"
            )
        temps.append(float(t))
    base = preset.sampling if preset is not None else SamplingConfig()
    tokens = max_tokens if max_tokens is not None else base.max_tokens
    return tuple(
        SamplingConfig(
            temperature=t,
            top_p=base.top_p,
            max_tokens=tokens,
            stop=base.stop,
            seed=base.seed,
        )
        for t in temps
    )


def _scoring(
    pipeline: Any, metrics: Any, extractor: Any, preset: Any, on_engine: bool
) -> ScoringConfig:
    if pipeline is not None:
        return ScoringConfig(pipeline=pipeline, on_engine=on_engine)
    if metrics is None and preset is not None:
        return ScoringConfig(pipeline=preset.pipeline(), on_engine=on_engine)
    if metrics is None:
        raise ConfigurationError(
            "no metrics: pass metrics=['exact_match', ...] or evaluation_pipeline=..."
        )
    if extractor is None:
        extractor = preset.extractor() if preset is not None else "identity"
    return ScoringConfig(metrics=tuple(metrics), extractor=extractor, on_engine=on_engine)
