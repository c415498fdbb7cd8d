"""Level 1 and 2: :func:`evaluate` — one call from a benchmark name or your rows to a report."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .backends.execution import ExecutionBackend
from .backends.storage import StorageBackend
from .core.entities import ExperimentReport, ModelSpec, SamplingConfig
from .errors import ConfigurationError
from .generation.templates import PromptTemplate

__all__ = ["DEFAULT_CACHE_DIR", "evaluate", "parse_model", "PROVIDER_OPTIONS"]

DEFAULT_CACHE_DIR = ".themis_cache"

#: Provider options ``evaluate(**provider_options)`` accepts, per provider.
PROVIDER_OPTIONS: dict[str, frozenset[str]] = {
    "litellm": frozenset(
        {
            "api_base",
            "base_url",
            "api_key",
            "api_version",
            "organization",
            "extra_headers",
            "custom_llm_provider",
            "aws_region_name",
            "vertex_project",
            "vertex_location",
            "drop_params",
            "extra_body",
        }
    ),
    "fake": frozenset({"wrong_rate", "latency", "fail_rate", "error"}),
    "python": frozenset(),
}


def _python_callable(path: str) -> Callable[..., Any]:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ConfigurationError(
            f"python model {path!r} must look like 'python:package.module:function'"
        )
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load python model {path!r}: {exc}") from None
    if not callable(target):
        raise ConfigurationError(f"python model {path!r} is not callable")
    return target  # type: ignore[no-any-return]


def parse_model(spec: str | ModelSpec | Callable[..., Any], **options: Any) -> ModelSpec:
    """Turn a model string, a ``ModelSpec`` or a callable into a ``ModelSpec``.

    ``fake:NAME`` → the offline fake provider; ``python:pkg.mod:fn`` or a callable → your code as
    the model; ``litellm:ID`` or any other string → litellm (``openai/gpt-4o-mini``,
    ``anthropic/…``, ``ollama/…`` …). ``options`` (api_base, api_key …) are merged in.
    """
    if isinstance(spec, ModelSpec):
        if not options:
            return spec
        return ModelSpec(
            spec.identifier, spec.provider, spec.default_sampling, {**spec.options, **options}
        )
    if callable(spec):
        name = getattr(spec, "__qualname__", None) or type(spec).__name__
        module = getattr(spec, "__module__", None)
        identifier = f"{module}.{name}" if module and module != "__main__" else name
        return ModelSpec(identifier, "python", options={**options, "fn": spec})
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigurationError(
            f"model must be a non-empty string, ModelSpec or callable, got {spec!r}"
        )
    spec = spec.strip()
    prefix, sep, rest = spec.partition(":")
    if sep and prefix == "fake":
        if not rest:
            raise ConfigurationError("model 'fake:' needs a name, e.g. 'fake:fake-math-llm'")
        return ModelSpec(rest, "fake", options=options)
    if sep and prefix == "python":
        return ModelSpec(rest, "python", options={**options, "fn": _python_callable(rest)})
    if sep and prefix == "litellm":
        spec = rest
    if sep and prefix not in ("litellm",) and "/" not in prefix:
        from .providers import list_providers

        if prefix in list_providers():
            return ModelSpec(rest, prefix, options=options)
    from .providers.litellm_provider import validate_model

    validate_model(spec, options)
    return ModelSpec(spec, "litellm", options=options)


def _check_provider_options(models: Sequence[ModelSpec], options: Mapping[str, Any]) -> None:
    for model in models:
        allowed = PROVIDER_OPTIONS.get(model.provider)
        if allowed is None:
            continue
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) {', '.join(unknown)} for provider {model.provider!r} "
                f"(model {model.identifier!r}); accepted: {', '.join(sorted(allowed)) or 'none'}"
            )


def _templates(prompt: Any, default: PromptTemplate | None) -> list[PromptTemplate]:
    if prompt is None:
        if default is None:
            raise ConfigurationError(
                "no prompt given: pass prompt='... {field} ...' (a template over your rows' fields)"
            )
        return [default]
    if isinstance(prompt, PromptTemplate):
        return [prompt]
    if isinstance(prompt, str):
        return [PromptTemplate(name="prompt", template=prompt)]
    if isinstance(prompt, Mapping):
        return [
            p if isinstance(p, PromptTemplate) else PromptTemplate(name=str(n), template=str(p))
            for n, p in prompt.items()
        ]
    if isinstance(prompt, Sequence):
        out: list[PromptTemplate] = []
        for i, p in enumerate(prompt):
            out.append(p if isinstance(p, PromptTemplate) else PromptTemplate(f"prompt{i}", str(p)))
        return out
    raise ConfigurationError(f"prompt must be a str, PromptTemplate, list or dict, got {prompt!r}")


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
    max_parallel: int | str = 16,
    max_retries: int = 3,
    timeout: float | None = 60.0,
    storage: str | os.PathLike[str] | StorageBackend | None = DEFAULT_CACHE_DIR,
    execution_backend: ExecutionBackend | None = None,
    storage_backend: StorageBackend | str | None = None,
    run_id: str | None = None,
    resume: bool = True,
    cache: str = "use",
    max_cost_usd: float | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[Any], None] | None = None,
    **provider_options: Any,
) -> ExperimentReport:
    """Run a benchmark preset or your own rows against one or more models and score them.

    ``evaluate("gsm8k", model="openai/gpt-4o-mini")`` uses the preset's data, prompt, extractor
    and metrics; ``evaluate(dataset=rows, prompt="... {question}", reference_field="answer",
    metrics=["exact_match"], model=...)`` evaluates your rows. Generations are cached in
    ``storage`` (a folder in the working directory by default; also a store URL such as
    ``postgresql://user@host/db`` or ``s3://bucket/prefix``), so a rerun is free and an
    interrupted run resumes. Extra keyword arguments are provider options (``api_base``,
    ``api_key`` …); unknown ones are rejected.
    """
    from .evaluation import get_extractor, get_metric
    from .evaluation.pipeline import EvaluationPipeline
    from .experiment.cache_manager import CacheManager
    from .experiment.orchestrator import ExperimentOrchestrator
    from .generation.plan import GenerationPlan
    from .generation.runner import GenerationRunner

    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ConfigurationError(f"limit must be a non-negative integer, got {limit!r}")
    if benchmark_or_dataset is not None and dataset is not None:
        raise ConfigurationError(
            "pass either a benchmark name / rows positionally or dataset=, not both"
        )
    source = benchmark_or_dataset if benchmark_or_dataset is not None else dataset
    if source is None:
        raise ConfigurationError("nothing to evaluate: pass a benchmark name or dataset=[...]")

    preset = None
    dataset_info: dict[str, Any] = {}
    if isinstance(source, str) and not Path(source).suffix:
        from .presets import get_benchmark_preset

        preset = get_benchmark_preset(source)
        rows: list[Any] = preset.load(limit=limit, data_dir=data_dir)
        dataset_info = dict(preset.describe_source(data_dir), name=preset.name)
    elif isinstance(source, (str, os.PathLike)):
        from .presets.loading import load_local_file

        rows = load_local_file(source, limit=limit)
        dataset_info = {"name": Path(source).name, "source": str(source)}
    else:
        rows = list(source)
        if limit is not None:
            rows = rows[:limit]

    if model is None and preset is not None and preset.default_model:
        model = preset.default_model
    if model is None:
        raise ConfigurationError("no model given: pass model='openai/gpt-4o-mini' (or 'fake:NAME')")
    models_in = model if isinstance(model, (list, tuple)) else [model]
    models = [parse_model(m, **provider_options) for m in models_in]
    _check_provider_options(models, provider_options)

    templates = _templates(prompt, preset.prompt if preset is not None else None)
    for t in temperature if isinstance(temperature, (list, tuple)) else [temperature]:
        if isinstance(t, bool) or not isinstance(t, (int, float)):
            raise ConfigurationError(
                f"temperature must be a number >= 0 or a list of them, got {t!r}"
            )
    temps: list[float] = (
        [float(t) for t in temperature]
        if isinstance(temperature, (list, tuple))
        else [float(temperature)]  # type: ignore[arg-type]
    )
    base = preset.sampling if preset is not None else SamplingConfig()
    sampling = [
        SamplingConfig(
            temperature=float(t),
            top_p=base.top_p,
            max_tokens=max_tokens if max_tokens is not None else base.max_tokens,
            stop=base.stop,
            seed=base.seed,
        )
        for t in temps
    ]

    if evaluation_pipeline is None:
        if metrics is None and preset is not None:
            evaluation_pipeline = preset.pipeline()
        else:
            if metrics is None:
                raise ConfigurationError(
                    "no metrics: pass metrics=['exact_match', ...] or evaluation_pipeline=..."
                )
            chosen_extractor = (
                get_extractor(extractor)
                if extractor is not None
                else (preset.extractor() if preset is not None else get_extractor("identity"))
            )
            evaluation_pipeline = EvaluationPipeline(
                extractor=chosen_extractor, metrics=[get_metric(m) for m in metrics]
            )

    plan = GenerationPlan(
        templates=templates,
        models=models,
        sampling_parameters=sampling,
        dataset_id_field=id_field or (preset.id_field if preset is not None else "id"),
        reference_field=reference_field or (preset.reference_field if preset is not None else None),
        num_samples=num_samples,
    )
    store = storage_backend if storage_backend is not None else storage
    opened = False
    if store is not None and cache != "off":
        from .storage.urls import open_storage

        opened = not isinstance(store, StorageBackend)  # ours to close
        store = open_storage(store)  # a bad URL / password / host fails here, before any request
    runner = GenerationRunner(
        max_parallel=max_parallel,
        max_retries=max_retries,
        execution_backend=execution_backend,
        timeout=timeout,
        max_cost_usd=max_cost_usd,
    )
    cache_manager = CacheManager(
        storage=store, enable_resume=resume, enable_cache=store is not None, mode=cache
    )
    orchestrator = ExperimentOrchestrator(
        generation_plan=plan,
        generation_runner=runner,
        evaluation_pipeline=evaluation_pipeline,
        cache_manager=cache_manager,
        dataset_info=dataset_info,
        experiment=preset.name if preset is not None else "evaluate",
    )
    try:
        return orchestrator.run(dataset=rows, run_id=run_id, progress=progress)
    finally:
        runner.close()
        if opened and isinstance(store, StorageBackend):
            store.close()
