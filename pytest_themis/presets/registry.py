"""The benchmark registry: ``register_benchmark``, ``list_benchmarks``, ``get_benchmark_preset``."""

from __future__ import annotations

import re

from ..errors import ConfigurationError
from .base import BenchmarkPreset

__all__ = ["get_benchmark_preset", "list_benchmarks", "register_benchmark", "unregister_benchmark"]

_PRESETS: dict[str, BenchmarkPreset] = {}


def _key(name: str) -> str:
    """Lookup key: case and punctuation do not matter (``MATH-500`` finds ``math500``)."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _find(name: str) -> str | None:
    if name in _PRESETS:
        return name
    wanted = _key(name)
    return next((n for n in _PRESETS if _key(n) == wanted), None)


def register_benchmark(preset: BenchmarkPreset, *, replace: bool = False) -> None:
    """Make ``preset`` available by name (``--themis-preset``, ``evaluate(name)``)."""
    if not isinstance(preset, BenchmarkPreset):
        raise ConfigurationError(
            f"register_benchmark() takes a BenchmarkPreset, got {type(preset).__name__}"
        )
    existing = _find(preset.name)
    if existing is not None:
        if not replace:
            raise ConfigurationError(
                f"benchmark {preset.name!r} is already registered (as {existing!r}); "
                "pass replace=True to override it"
            )
        del _PRESETS[existing]
    _PRESETS[preset.name] = preset


def unregister_benchmark(name: str) -> None:
    """Remove a registered benchmark (mainly for tests); unknown names are ignored."""
    found = _find(name)
    if found is not None:
        del _PRESETS[found]


def list_benchmarks() -> list[str]:
    """Registered benchmark names, sorted."""
    return sorted(_PRESETS)


def get_benchmark_preset(name: str) -> BenchmarkPreset:
    """The preset registered as ``name`` (case-insensitive; ``-``/``_`` ignored)."""
    found = _find(name) if isinstance(name, str) else None
    if found is None:
        raise ConfigurationError(
            f"unknown benchmark {name!r}; available: {', '.join(list_benchmarks()) or 'none'}. "
            "Register your own with pytest_themis.presets.register_benchmark()."
        )
    return _PRESETS[found]
