"""Extension points of pytest-themis, on pluggy (project name ``pytest_themis``).

A package extends themis by exposing a module with ``@hookimpl`` functions under the entry-point
group ``pytest_themis`` (``[project.entry-points.pytest_themis] my_pack = "my_pack.themis"``).
Each hook returns a mapping ``name -> object``; the built-ins register through the same hooks.
Factories may be given as ``"package.module:attribute"`` strings, imported on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pluggy

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "pytest_themis"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def themis_register_presets() -> Mapping[str, Any]:
    """Benchmark presets: name -> ``BenchmarkPreset`` (``--themis-preset``, ``evaluate(name)``)."""
    raise NotImplementedError


@hookspec
def themis_register_metrics() -> Mapping[str, Any]:
    """Metrics: name -> factory returning a ``Metric`` (``metrics=["name"]``)."""
    raise NotImplementedError


@hookspec
def themis_register_extractors() -> Mapping[str, Any]:
    """Extractors: name -> factory returning an ``Extractor`` (``extractor="name"``)."""
    raise NotImplementedError


@hookspec
def themis_register_providers() -> Mapping[str, Any]:
    """Model providers: name -> factory returning a ``Provider`` (``model="name:ID"``)."""
    raise NotImplementedError


@hookspec
def themis_register_backends() -> Mapping[str, Any]:
    """Execution backends: name -> factory returning an ``ExecutionBackend``."""
    raise NotImplementedError
