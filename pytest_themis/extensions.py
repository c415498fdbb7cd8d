"""The extension registry: one lazily created pluggy ``PluginManager`` for themis' own hooks.

On first use it registers the built-in tables (through the same hooks a plugin implements) and
loads every setuptools entry point in the group ``pytest_themis``. The name registries of presets,
metrics, extractors and providers read from :func:`registered`. A plain pytest run never imports
this module.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .errors import ConfigurationError

__all__ = ["ENTRY_POINT_GROUP", "KINDS", "plugin_manager", "registered"]

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
#: Registry kind -> hook that fills it.
KINDS = {
    "presets": "themis_register_presets",
    "metrics": "themis_register_metrics",
    "extractors": "themis_register_extractors",
    "providers": "themis_register_providers",
    "backends": "themis_register_backends",
}
#: Modules holding the built-in hook implementations (each owns its table).
BUILTIN_PLUGINS = (
    "pytest_themis.presets.registry",
    "pytest_themis.evaluation.registry",
    "pytest_themis.providers.base",
    "pytest_themis.backends.registry",
)

_LOCK = threading.RLock()
_manager: pluggy.PluginManager | None = None
_builtins: dict[str, ModuleType] = {}
_tables: dict[str, dict[str, Any]] = {}


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager (built-ins and installed entry points registered on creation).

    Rebuilt when a built-in module was imported afresh since (pytest's in-process test runs drop
    the modules they imported), so the tables never mix objects of two imports of one module.
    """
    global _manager
    with _LOCK:
        if _manager is None or any(sys.modules.get(n) is not m for n, m in _builtins.items()):
            _tables.clear()
            _builtins.clear()
            manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
            manager.add_hookspecs(hookspecs)
            for name in BUILTIN_PLUGINS:
                module = _builtins[name] = importlib.import_module(name)
                manager.register(module, name=f"builtin:{name}")
            manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
            _manager = manager
        return _manager


def registered(kind: str) -> dict[str, Any]:
    """``name -> object`` that every plugin registered for ``kind`` (one of :data:`KINDS`).

    Raises :class:`ConfigurationError` naming both plugins when two register the same name.
    """
    with _LOCK:
        plugin_manager()  # (re)built first: it may drop tables of an earlier import
        table = _tables.get(kind)
        if table is None:
            table = _tables[kind] = _collect(kind)
        return dict(table)


def _collect(kind: str) -> dict[str, Any]:
    if kind not in KINDS:
        raise ConfigurationError(f"unknown extension kind {kind!r}; use one of {', '.join(KINDS)}")
    manager = plugin_manager()
    hook = getattr(manager.hook, KINDS[kind])
    table: dict[str, Any] = {}
    owners: dict[str, str] = {}
    for impl in hook.get_hookimpls():  # registration order: built-ins first
        owner = manager.get_name(impl.plugin) or repr(impl.plugin)
        entries = impl.function()
        if entries is None:
            continue
        if not isinstance(entries, Mapping):
            raise ConfigurationError(
                f"plugin {owner!r}: {KINDS[kind]}() must return a mapping name -> object, "
                f"got {type(entries).__name__}"
            )
        for name, value in entries.items():
            if name in owners:
                raise ConfigurationError(
                    f"{kind[:-1]} {name!r} is registered by both plugin {owners[name]!r} and "
                    f"plugin {owner!r}; uninstall one of them or rename its {kind[:-1]}"
                )
            owners[name] = owner
            table[name] = value
    return table
