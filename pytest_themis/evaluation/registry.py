"""Name → factory registries for metrics and extractors.

Lookups ignore case, ``_`` and ``-``: ``"exact_match"``, ``"ExactMatch"`` and ``"exact-match"``
are the same name. Entries come from the extension hooks (``themis_register_metrics`` /
``themis_register_extractors``: the built-ins below and installed plugins), read on first lookup,
plus what :func:`register_metric` / :func:`register_extractor` add at run time. Built-in classes
are imported only when first requested.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ..core.entities import canonical_metric_name
from ..errors import ConfigurationError
from ..hookspecs import hookimpl
from .extractors import Extractor
from .metrics.base import Metric

__all__ = [
    "get_extractor",
    "get_metric",
    "list_extractors",
    "list_metrics",
    "register_extractor",
    "register_metric",
]

Factory = Callable[..., Any]

_BUILTIN_METRICS = {
    "exact_match": "pytest_themis.evaluation.metrics.exact_match:ExactMatch",
    "math_verify_accuracy": "pytest_themis.evaluation.metrics.math_verify:MathVerifyAccuracy",
    "response_length": "pytest_themis.evaluation.metrics.response_length:ResponseLength",
    "contains": "pytest_themis.evaluation.metrics.contains:Contains",
    "numeric_match": "pytest_themis.evaluation.metrics.numeric_match:NumericMatch",
    "choice_accuracy": "pytest_themis.evaluation.choice:ChoiceAccuracy",
    "code_execution": "pytest_themis.evaluation.metrics.code_execution:CodeExecution",
    "llm_judge": "pytest_themis.evaluation.metrics.llm_judge:LLMJudge",
}
_METRIC_ALIASES = {"math_verify": "math_verify_accuracy"}

_BUILTIN_EXTRACTORS = {
    name: f"pytest_themis.evaluation.extractors:{cls}"
    for name, cls in {
        "identity": "IdentityExtractor",
        "regex": "RegexExtractor",
        "json_field": "JsonFieldExtractor",
        "gsm8k": "GSM8KExtractor",
        "boxed": "BoxedExtractor",
        "math_verify": "MathVerifyExtractor",
        "multiple_choice": "MultipleChoiceExtractor",
    }.items()
}
_BUILTIN_EXTRACTORS["choice"] = "pytest_themis.evaluation.choice:ChoiceExtractor"
_BUILTIN_EXTRACTORS["code"] = "pytest_themis.evaluation.code_extraction:CodeExtractor"


@hookimpl
def themis_register_metrics() -> dict[str, str]:
    """The built-in metrics, registered through the extension hook like any plugin's."""
    return dict(_BUILTIN_METRICS)


@hookimpl
def themis_register_extractors() -> dict[str, str]:
    """The built-in extractors, registered through the extension hook like any plugin's."""
    return dict(_BUILTIN_EXTRACTORS)


class _Registry:
    def __init__(self, kind: str, base: type, aliases: dict[str, str]) -> None:
        self.kind = kind
        self.base = base
        self._entries: dict[str, tuple[str, Factory | str]] = {}
        self._alias_targets = aliases
        self._aliases = {canonical_metric_name(a) for a in aliases}
        self._loaded = False

    def _load_plugins(self) -> None:
        """Merge what the extension hooks register (once, on first use)."""
        if self._loaded:
            return
        # deferred: the extension registry imports this module to register the built-ins
        from ..extensions import registered

        plugins = registered(f"{self.kind}s")
        self._loaded = True
        for name, target in plugins.items():
            key = canonical_metric_name(name)
            if key in self._entries and key not in self._aliases:
                raise ConfigurationError(
                    f"{self.kind} {name!r} from a plugin clashes with "
                    f"{self._entries[key][0]!r}; rename one of them"
                )
            self._entries[key] = (name, target)
        for alias, name in self._alias_targets.items():
            self._entries.setdefault(canonical_metric_name(alias), (name, plugins[name]))

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(
            display for key, (display, _) in self._entries.items() if key not in self._aliases
        )

    def register(self, name: str, factory: Factory, overwrite: bool) -> None:
        self._load_plugins()
        if not isinstance(name, str) or not canonical_metric_name(name):
            raise ConfigurationError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if not callable(factory):
            raise ConfigurationError(
                f"{self.kind} factory for {name!r} must be callable (a class or a function "
                f"returning a {self.base.__name__}), got {factory!r}"
            )
        key = canonical_metric_name(name)
        if key in self._entries and not overwrite:
            raise ConfigurationError(
                f"a {self.kind} named {self._entries[key][0]!r} is already registered; pass "
                "overwrite=True to replace it"
            )
        self._aliases.discard(key)
        self._entries[key] = (name, factory)

    def create(self, name_or_instance: Any, kwargs: dict[str, Any]) -> Any:
        self._load_plugins()
        if isinstance(name_or_instance, self.base):
            if kwargs:
                raise ConfigurationError(
                    f"got a {self.kind} instance {name_or_instance!r} together with options "
                    f"{sorted(kwargs)}; pass options to its constructor instead"
                )
            return name_or_instance
        if isinstance(name_or_instance, type) and issubclass(name_or_instance, self.base):
            return self._build(name_or_instance.__name__, name_or_instance, kwargs)
        if not isinstance(name_or_instance, str):
            raise ConfigurationError(
                f"expected a {self.kind} name or {self.base.__name__} instance, got "
                f"{type(name_or_instance).__name__} {name_or_instance!r}"
            )
        entry = self._entries.get(canonical_metric_name(name_or_instance))
        if entry is None:
            raise ConfigurationError(
                f"unknown {self.kind} {name_or_instance!r}; available: {', '.join(self.names())}"
                f" (add your own with register_{self.kind})"
            )
        display, target = entry
        factory = _load(target) if isinstance(target, str) else target
        return self._build(display, factory, kwargs)

    def _build(self, display: str, factory: Factory, kwargs: dict[str, Any]) -> Any:
        try:
            instance = factory(**kwargs)
        except ConfigurationError:
            raise
        except TypeError as exc:
            raise ConfigurationError(
                f"cannot create {self.kind} {display!r} with options {kwargs!r}: {exc}"
            ) from exc
        if not isinstance(instance, self.base):
            raise ConfigurationError(
                f"{self.kind} factory {display!r} returned {type(instance).__name__}; expected "
                f"a {self.base.__name__} instance"
            )
        return instance


def _load(target: str) -> Factory:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


_METRICS = _Registry("metric", Metric, _METRIC_ALIASES)
_EXTRACTORS = _Registry("extractor", Extractor, {})


def get_metric(name_or_metric: Metric | str | type[Metric], **kwargs: Any) -> Metric:
    """A metric by registry name (any case, ``_`` or ``-``), class, or instance (returned as is)."""
    return _METRICS.create(name_or_metric, kwargs)


def list_metrics() -> list[str]:
    """Registered metric names (aliases omitted), sorted."""
    return _METRICS.names()


def register_metric(name: str, factory: Factory, *, overwrite: bool = False) -> None:
    """Make ``get_metric(name, **kwargs)`` return ``factory(**kwargs)``."""
    _METRICS.register(name, factory, overwrite)


def get_extractor(name_or_extractor: Extractor | str | type[Extractor], **kwargs: Any) -> Extractor:
    """An extractor by registry name, class, or an instance (returned as is)."""
    return _EXTRACTORS.create(name_or_extractor, kwargs)


def list_extractors() -> list[str]:
    """Registered extractor names, sorted."""
    return _EXTRACTORS.names()


def register_extractor(name: str, factory: Factory, *, overwrite: bool = False) -> None:
    """Make ``get_extractor(name, **kwargs)`` return ``factory(**kwargs)``."""
    _EXTRACTORS.register(name, factory, overwrite)
