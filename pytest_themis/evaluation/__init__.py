"""Scoring: extractors pull answers out of responses, metrics score them, the pipeline runs both.

Names are loaded on first access so that importing this package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EvaluationPipeline": "pytest_themis.evaluation.pipeline",
    "Extractor": "pytest_themis.evaluation.extractors",
    "IdentityExtractor": "pytest_themis.evaluation.extractors",
    "RegexExtractor": "pytest_themis.evaluation.extractors",
    "JsonFieldExtractor": "pytest_themis.evaluation.extractors",
    "GSM8KExtractor": "pytest_themis.evaluation.extractors",
    "BoxedExtractor": "pytest_themis.evaluation.extractors",
    "MathVerifyExtractor": "pytest_themis.evaluation.extractors",
    "MultipleChoiceExtractor": "pytest_themis.evaluation.extractors",
    "strip_reasoning": "pytest_themis.evaluation.extractors",
    "Metric": "pytest_themis.evaluation.metrics",
    "ExactMatch": "pytest_themis.evaluation.metrics",
    "MathVerifyAccuracy": "pytest_themis.evaluation.metrics",
    "ResponseLength": "pytest_themis.evaluation.metrics",
    "Contains": "pytest_themis.evaluation.metrics",
    "NumericMatch": "pytest_themis.evaluation.metrics",
    "aggregate": "pytest_themis.core.statistics",
    "get_metric": "pytest_themis.evaluation.registry",
    "list_metrics": "pytest_themis.evaluation.registry",
    "register_metric": "pytest_themis.evaluation.registry",
    "get_extractor": "pytest_themis.evaluation.registry",
    "list_extractors": "pytest_themis.evaluation.registry",
    "register_extractor": "pytest_themis.evaluation.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_themis.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
