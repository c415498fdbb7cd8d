"""Secrets out of reports: find a run's credentials, mask them in its data, cut them from text.

The rules are the project's own: :func:`~pytest_themis.providers.base.secret_values` decides
which option values are credentials, :func:`~pytest_themis.core.entities.redact_url` which parts
of a URL are, and :func:`~pytest_themis.core.entities.redact_secrets` cuts them out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from ..core.entities import REDACTED, is_secret_option, redact_secrets, redact_url, url_secrets
from ..providers.base import secret_values

__all__ = ["redact_output", "run_secrets", "scrub"]


def run_secrets(value: Any) -> set[str]:
    """Every credential in ``value`` (a manifest, say): option values under secret-looking
    names, header values, bearer tokens, and the passwords and secret query values of URLs."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        found.update(secret_values(value))
        for item in value.values():
            found |= run_secrets(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            found |= run_secrets(item)
    elif isinstance(value, str) and "://" in value:
        found.update(url_secrets(value))
    return found


def scrub(value: Any) -> Any:
    """``value`` with strings under secret-looking names masked and every URL redacted."""
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if is_secret_option(str(k)) and isinstance(v, str) else scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value


def redact_output(text: str, secrets: Iterable[str]) -> str:
    """``text`` without any of ``secrets``, also in their HTML-escaped and JSON-escaped forms
    (e.g. a response that echoed the key, embedded in a page)."""
    forms = set()
    for secret in secrets:
        forms |= {secret, escape(secret), json.dumps(secret)[1:-1]}
    return redact_secrets(text, forms)
