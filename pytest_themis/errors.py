"""Exception hierarchy. Every error pytest-themis raises on purpose is a :class:`ThemisError`.

Messages say what failed, where (row id, field, option) and how to fix it.
Provider errors are classified by *type* so the runner never has to parse message text:
:class:`TransientProviderError` subclasses are retried, :class:`PermanentProviderError`
subclasses are not.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "CacheFolderError",
    "ConfigurationError",
    "DatasetError",
    "ExtractionError",
    "MetricError",
    "ModelNotFoundError",
    "PermanentProviderError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitError",
    "MalformedResponseError",
    "ServerError",
    "TemplateError",
    "ThemisError",
    "TransientProviderError",
]


class ThemisError(Exception):
    """Base class of every error raised deliberately by pytest-themis."""


class ConfigurationError(ThemisError, ValueError):
    """An option, argument, marker keyword or registry name is invalid."""


class CacheFolderError(ConfigurationError):
    """The cache folder cannot be created, opened or written (or its database is damaged)."""


class DatasetError(ThemisError, ValueError):
    """The dataset is empty, malformed, has duplicate ids or lacks a required field."""


class TemplateError(ThemisError, ValueError):
    """A prompt template is malformed or refers to a field the row does not have."""


class ExtractionError(ThemisError):
    """An extractor found no answer in a model response (scored 0, counted separately)."""


class MetricError(ThemisError):
    """A metric raised or returned something that is not a score."""


class ProviderError(ThemisError):
    """A model provider failed to produce a response.

    ``status_code`` is the HTTP status when there was one; ``retry_after`` is the server's
    requested wait in seconds (429/503), honoured by the runner.
    """

    transient: bool = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        model: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after
        self.model = model


class TransientProviderError(ProviderError):
    """A failure worth retrying: rate limits, 5xx, timeouts, resets, malformed bodies."""

    transient = True


class RateLimitError(TransientProviderError):
    """HTTP 429 — the provider asks us to slow down (honour ``retry_after``)."""


class ServerError(TransientProviderError):
    """HTTP 5xx from the provider."""


class ProviderTimeoutError(TransientProviderError):
    """The request exceeded the client timeout."""


class ProviderConnectionError(TransientProviderError):
    """The connection failed or was reset."""


class MalformedResponseError(TransientProviderError):
    """The provider answered with a body that is not a valid completion."""


class PermanentProviderError(ProviderError):
    """A failure that retrying cannot fix."""


class AuthenticationError(PermanentProviderError):
    """HTTP 401/403 — the credentials were rejected."""


class BadRequestError(PermanentProviderError):
    """HTTP 400/422 — the request itself is invalid."""


class ModelNotFoundError(PermanentProviderError):
    """HTTP 404 — the model or endpoint does not exist."""


class BudgetExceededError(PermanentProviderError):
    """The cost budget was spent before this task started; it was not sent."""
