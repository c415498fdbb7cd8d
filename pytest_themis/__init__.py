"""pytest-themis: LLM evaluations as pytest tests.

Public names are loaded on first access so that ``import pytest_themis`` (and the pytest plugin)
stay cheap: litellm, datasets and sympy are imported only by the code paths that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "evaluate": "pytest_themis.api",
    "ThemisError": "pytest_themis.errors",
    "ConfigurationError": "pytest_themis.errors",
    "DatasetError": "pytest_themis.errors",
    "ModelSpec": "pytest_themis.core.entities",
    "SamplingConfig": "pytest_themis.core.entities",
    "EvaluationReport": "pytest_themis.core.reports",
    "ExperimentReport": "pytest_themis.core.reports",
    "PromptTemplate": "pytest_themis.generation.templates",
    "GenerationPlan": "pytest_themis.generation.plan",
    "GenerationRunner": "pytest_themis.generation.runner",
    "ProviderRouter": "pytest_themis.generation.router",
    "StatefulTaskExecutor": "pytest_themis.generation.executors",
    "EvaluationPipeline": "pytest_themis.evaluation.pipeline",
    "ExperimentOrchestrator": "pytest_themis.experiment.orchestrator",
    "CacheManager": "pytest_themis.experiment.cache_manager",
    "EvaluationRequest": "pytest_themis.experiment.request",
    "build_orchestrator": "pytest_themis.experiment.builder",
    "parse_model": "pytest_themis.providers.models",
    "hookimpl": "pytest_themis.hookspecs",
    "ExperimentStorage": "pytest_themis.storage",
    "PostgresStorage": "pytest_themis.storage.postgres",
    "S3Storage": "pytest_themis.storage.s3",
    "RayExecutionBackend": "pytest_themis.backends.ray",
    "DaskExecutionBackend": "pytest_themis.backends.dask",
    "create_provider": "pytest_themis.providers",
    "register_provider": "pytest_themis.providers",
    "list_providers": "pytest_themis.providers",
    "register_benchmark": "pytest_themis.presets",
    "list_benchmarks": "pytest_themis.presets",
    "get_benchmark_preset": "pytest_themis.presets",
    "Comparison": "pytest_themis.comparison",
    "CellComparison": "pytest_themis.comparison",
}

__all__ = sorted(_EXPORTS) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .api import evaluate  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_themis' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
