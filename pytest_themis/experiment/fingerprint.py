"""Fingerprints of Python-callable models, for the generation cache key.

The rule (documented in the README, "Your function as the model"):

1. A declared version wins: ``ModelSpec.options["version"]`` (``evaluate(model=fn, version=...)``)
   or an attribute ``fn.themis_version``. Declare one when the answer depends on something the
   code cannot show (a prompt file, a vector index, a remote service): bump it when that changes.
2. Otherwise the fingerprint hashes the code that runs: for a function, its code object
   (bytecode, constants, names — recursively through nested functions, lambdas and
   comprehensions), its default arguments, the values of its closure cells that are immutable
   with a stable ``repr`` (numbers, strings, tuples of those …; any other cell — a list, a
   client object — contributes only its type name), and the whole
   source file of the module that defines it — so editing a helper in the same file counts too.
   ``functools.partial`` adds its bound arguments; a callable object hashes its class's
   ``__call__`` and module and the simple values in its ``__dict__``; a bound method its
   function and its instance.

What the fingerprint cannot see: code in *other* modules the callable imports, files it reads,
and state held in objects with no stable ``repr``. Declare a version for those.
"""

from __future__ import annotations

import functools
import hashlib
import sys
import types
from collections.abc import Callable
from typing import Any

__all__ = ["callable_fingerprint", "declared_version"]

_SIMPLE = (type(None), bool, int, float, complex, str, bytes)
_MAX_DEPTH = 8


def declared_version(fn: Any, options: Any = None) -> str | None:
    """The version the user declared for ``fn`` (option ``version`` first, then the attribute)."""
    if options is not None:
        value = options.get("version")
        if value is not None:
            return str(value)
    value = getattr(fn, "themis_version", None)
    return None if value is None else str(value)


def _stable_repr(value: Any, depth: int = 0) -> str | None:
    """``repr`` of immutable values whose repr is their content (None for anything else).

    Mutable containers (lists, dicts, sets) are left out on purpose: a closure or attribute
    holding one is usually state the callable updates (a call log, a counter), not a setting.
    """
    if isinstance(value, _SIMPLE):
        return repr(value)
    if depth < _MAX_DEPTH and isinstance(value, (tuple, frozenset)):
        found = [_stable_repr(v, depth + 1) for v in value]
        parts = [p for p in found if p is not None]
        if len(parts) != len(found):
            return None
        if isinstance(value, frozenset):
            parts.sort()
        return f"{type(value).__name__}({','.join(parts)})"
    return None


def _feed_code(digest: Any, code: types.CodeType, depth: int = 0) -> None:
    digest.update(b"code|" + code.co_code)
    digest.update(repr(code.co_names).encode())
    digest.update(repr(code.co_varnames).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            if depth < _MAX_DEPTH:
                _feed_code(digest, const, depth + 1)
        else:
            digest.update(b"|c:" + (_stable_repr(const) or type(const).__name__).encode())


def _module_source_digest(module_name: str) -> str:
    """SHA-256 of the module's source file ('' when it has none, e.g. an interactive session)."""
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if not path:
        return ""
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return ""


def _feed_value(digest: Any, label: str, value: Any) -> None:
    text = _stable_repr(value)
    digest.update(f"|{label}:".encode() + (text or f"<{type(value).__qualname__}>").encode())


def _feed_function(digest: Any, fn: types.FunctionType) -> None:
    digest.update(f"fn|{fn.__module__}.{fn.__qualname__}".encode())
    _feed_code(digest, fn.__code__)
    _feed_value(digest, "defaults", fn.__defaults__)
    _feed_value(digest, "kwdefaults", fn.__kwdefaults__)
    for cell in fn.__closure__ or ():
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell
            contents = None
        if isinstance(contents, types.FunctionType):
            _feed_code(digest, contents.__code__)
        else:
            _feed_value(digest, "cell", contents)
    digest.update(b"|module:" + _module_source_digest(fn.__module__ or "").encode())


def _feed_callable(digest: Any, fn: Any, depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        return
    if isinstance(fn, functools.partial):
        _feed_value(digest, "partial-args", fn.args)
        for name, value in sorted(fn.keywords.items()):
            _feed_value(digest, f"partial-kwarg.{name}", value)
        _feed_callable(digest, fn.func, depth + 1)
        return
    if isinstance(fn, types.MethodType):
        _feed_callable(digest, fn.__func__, depth + 1)
        _feed_instance(digest, fn.__self__)
        return
    if isinstance(fn, types.FunctionType):
        _feed_function(digest, fn)
        wrapped = getattr(fn, "__wrapped__", None)  # functools.wraps decorators
        if wrapped is not None and callable(wrapped):
            _feed_callable(digest, wrapped, depth + 1)
        return
    call = type(fn).__dict__.get("__call__") or getattr(type(fn), "__call__", None)  # noqa: B004
    if isinstance(call, types.FunctionType):  # an instance of a class defining __call__
        _feed_function(digest, call)
        _feed_instance(digest, fn)
        return
    # Builtins and C extensions: their code cannot change between runs of one install.
    name = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', '')}"
    digest.update(f"builtin|{name}".encode())


def _feed_instance(digest: Any, obj: Any) -> None:
    digest.update(f"|self:{type(obj).__module__}.{type(obj).__qualname__}".encode())
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        for name in sorted(state):
            _feed_value(digest, f"attr.{name}", state[name])


def callable_fingerprint(fn: Callable[..., Any], options: Any = None) -> str:
    """``"version:<declared>"`` or ``"code:<sha256>"`` for ``fn``; see the module docstring."""
    version = declared_version(fn, options)
    if version is not None:
        return "version:" + version
    digest = hashlib.sha256()
    _feed_callable(digest, fn)
    return "code:" + digest.hexdigest()
