"""The benchmark registry: ``register_benchmark``, ``list_benchmarks``, ``get_benchmark_preset``.

Presets come from the ``themis_register_presets`` extension hook (the built-ins below and installed
plugins), read on first lookup, plus what :func:`register_benchmark` adds at run time.
"""

from __future__ import annotations

import re

from ..errors import ConfigurationError
from ..hookspecs import hookimpl
from .base import BenchmarkPreset

__all__ = ["get_benchmark_preset", "list_benchmarks", "register_benchmark", "unregister_benchmark"]

_PRESETS: dict[str, BenchmarkPreset] = {}
_LOADED: list[bool] = []


@hookimpl
def themis_register_presets() -> dict[str, BenchmarkPreset]:
    """The built-in presets, registered through the extension hook like any plugin's."""
    from .builtin import BUILTIN_PRESETS
    from .catalog import CATALOG_PRESETS

    return {preset.name: preset for preset in BUILTIN_PRESETS + CATALOG_PRESETS}


def _load_plugins() -> None:
    """Add the presets the extension hooks register (once, on first use)."""
    if _LOADED:
        return
    # deferred: the extension registry imports this module to register the built-ins
    from ..extensions import registered

    presets = registered("presets")
    _LOADED.append(True)
    for name, preset in presets.items():
        if not isinstance(preset, BenchmarkPreset) or preset.name != name:
            raise ConfigurationError(
                f"themis_register_presets() must map a preset's name to the BenchmarkPreset, "
                f"got {name!r} -> {preset!r}"
            )
        register_benchmark(preset)


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
    _load_plugins()
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
    _load_plugins()
    found = _find(name)
    if found is not None:
        del _PRESETS[found]


def list_benchmarks() -> list[str]:
    """Registered benchmark names, sorted."""
    _load_plugins()
    return sorted(_PRESETS)


def get_benchmark_preset(name: str) -> BenchmarkPreset:
    """The preset registered as ``name`` (case-insensitive; ``-``/``_`` ignored)."""
    _load_plugins()
    found = _find(name) if isinstance(name, str) else None
    if found is None:
        raise ConfigurationError(
            f"unknown benchmark {name!r}; available: {', '.join(list_benchmarks()) or 'none'}. "
            "Register your own with pytest_themis.presets.register_benchmark()."
        )
    return _PRESETS[found]
