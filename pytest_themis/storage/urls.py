"""One way to name a store everywhere: a URL, a folder, or a :class:`StorageBackend`.

``postgresql://…`` / ``postgres://…`` → :class:`~pytest_themis.storage.postgres.PostgresStorage`,
``s3://bucket/prefix`` → :class:`~pytest_themis.storage.s3.S3Storage`, any other string or path →
the embedded :class:`~pytest_themis.storage.ExperimentStorage` folder. Optional stores are imported
only when named.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
from pathlib import Path
from typing import Any

from ..backends.storage import StorageBackend
from ..core.entities import redact_url
from ..errors import ConfigurationError

__all__ = ["SUPPORTED", "check_storage_spec", "open_storage", "redact_url", "storage_scheme"]

#: What a store may be named by, for error messages.
SUPPORTED = "postgresql://user:password@host:port/database, s3://bucket/prefix, or a folder path"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: scheme → (module, class, extra, module whose absence means the extra is missing)
_STORES = {
    "postgresql": (".postgres", "PostgresStorage", "postgres", "psycopg"),
    "postgres": (".postgres", "PostgresStorage", "postgres", "psycopg"),
    "s3": (".s3", "S3Storage", "s3", "boto3"),
}


def storage_scheme(spec: str) -> str | None:
    """The lower-cased URL scheme of ``spec`` (``postgresql``, ``s3`` …), or None for a path."""
    match = _SCHEME.match(spec.strip())
    return match.group(1).lower() if match else None


def check_storage_spec(spec: str) -> str:
    """Validate a store name without connecting: known scheme, well-formed URL, extra installed.

    Returns the stripped spec; raises :class:`ConfigurationError` naming the fix.
    """
    text = str(spec).strip()
    if not text:
        raise ConfigurationError(f"empty storage name; use {SUPPORTED}")
    scheme = storage_scheme(text)
    if scheme is None:
        return text
    if scheme not in _STORES:
        raise ConfigurationError(
            f"unsupported storage URL scheme {scheme + '://'!r} in {redact_url(text)}; "
            f"use {SUPPORTED}"
        )
    _, _, extra, probe = _STORES[scheme]
    if probe is not None and importlib.util.find_spec(probe) is None:
        raise ConfigurationError(
            f"storage {redact_url(text)} needs the {extra} extra; "
            f'run: pip install "pytest-themis[{extra}]"'
        )
    if scheme == "s3" and not text[len("s3://") :].split("/", 1)[0]:
        raise ConfigurationError(f"storage URL {text!r} names no bucket; use s3://bucket/prefix")
    return text


def open_storage(
    spec: str | os.PathLike[str] | StorageBackend | None, *, connect: bool = True
) -> StorageBackend:
    """The store named by ``spec``: a URL, a folder path, or a :class:`StorageBackend` as is.

    ``None`` is the default folder ``.themis_cache``. With ``connect`` (the default) a store that
    has an ``open()`` method is opened now, so a bad URL, password or host fails here, in one
    :class:`ConfigurationError` line, before any request is sent.
    """
    if isinstance(spec, StorageBackend):
        store = spec
    elif spec is None or isinstance(spec, os.PathLike):
        from . import ExperimentStorage  # deferred: the storage package imports this module

        store = ExperimentStorage(spec if spec is not None else ".themis_cache")
    elif isinstance(spec, str):
        store = _from_string(check_storage_spec(spec))
    else:
        raise ConfigurationError(
            f"storage must be a URL, a folder path or a StorageBackend, got {type(spec).__name__}; "
            f"use {SUPPORTED}"
        )
    opener = getattr(store, "open", None)
    if connect and callable(opener):
        opener()
    return store


def _from_string(text: str) -> StorageBackend:
    scheme = storage_scheme(text)
    if scheme is None:
        from . import ExperimentStorage  # deferred: the storage package imports this module

        return ExperimentStorage(Path(os.path.expanduser(text)))
    module_name, class_name, extra, _ = _STORES[scheme]
    try:
        module = importlib.import_module(module_name, __package__)
    except ImportError as exc:
        raise ConfigurationError(
            f"storage {redact_url(text)} needs the {extra} extra ({exc}); "
            f'run: pip install "pytest-themis[{extra}]"'
        ) from None
    store: Any = getattr(module, class_name)(text)
    return store
