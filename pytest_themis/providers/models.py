"""Model strings → :class:`ModelSpec`, and the options each provider accepts."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..core.entities import ModelSpec
from ..errors import ConfigurationError

__all__ = ["PROVIDER_OPTIONS", "check_provider_options", "parse_model"]

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
    "python": frozenset({"version"}),  # a declared version of a callable model (cache key)
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
        from . import list_providers

        if prefix in list_providers():
            return ModelSpec(rest, prefix, options=options)
    from .litellm_names import validate_model

    validate_model(spec, options)
    return ModelSpec(spec, "litellm", options=options)


def check_provider_options(models: Sequence[ModelSpec], options: Mapping[str, Any]) -> None:
    """Reject provider options a model's provider does not accept, naming the accepted ones."""
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
