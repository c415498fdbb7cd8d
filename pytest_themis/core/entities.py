"""Plain value types shared by every layer. No I/O happens here."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CellSpec",
    "ConversationMessage",
    "EvaluationRecord",
    "GenerationError",
    "GenerationRecord",
    "GenerationTask",
    "MetricAggregate",
    "MetricMap",
    "MetricScore",
    "ModelSpec",
    "ProviderResponse",
    "SamplingConfig",
    "TokenUsage",
    "canonical_metric_name",
    "is_secret_option",
    "redact_options",
    "redact_secrets",
    "redact_text",
    "redact_url",
    "url_secrets",
]

ConversationMessage = Mapping[str, str]

_SECRET_WORDS = ("key", "token", "secret", "password", "auth", "header", "credential", "cookie")
REDACTED = "***"


def is_secret_option(name: str) -> bool:
    """True when a provider option name looks like it carries a credential."""
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def redact_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of ``options`` with every secret-looking value replaced by ``***``."""
    out: dict[str, Any] = {}
    for key, value in sorted(options.items()):
        if is_secret_option(key):
            value = REDACTED
        elif isinstance(value, str) and "://" in value:  # e.g. an api_base with a password
            value = redact_url(value)
        elif callable(value):
            value = f"<callable {getattr(value, '__qualname__', type(value).__name__)}>"
        out[key] = value
    return out


def redact_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret replaced by ``***`` (longest first).

    The one place secrets are cut out of messages; secrets shorter than 4 characters are kept
    (replacing them would mangle ordinary text without protecting anything).
    """
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def redact_text(text: str, options: Mapping[str, Any]) -> str:
    """``text`` with every secret option value (and header value) and every credential in an
    option's URL (``api_base`` …) replaced by ``***``."""
    secrets: list[str] = []
    for key, value in options.items():
        if isinstance(value, str) and "://" in value:
            secrets += url_secrets(value)
        if not is_secret_option(key):
            continue
        values = value.values() if isinstance(value, Mapping) else [value]
        for secret in map(str, values):
            secrets.append(secret)
            if secret.lower().startswith("bearer "):
                secrets.append(secret[7:])
    return redact_secrets(text, secrets)


_URL_START = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: A query parameter carrying a credential: ``password=``, ``X-Amz-Security-Token=``, ``sig=`` …
_SECRET_PARAM = re.compile(
    r"([?&;](?:[\w.-]*(?:password|secret|token|credential|signature|key|auth)[\w.-]*|sig)=)"
    r"([^&;#]*)",
    re.IGNORECASE,
)


def _userinfo(text: str) -> tuple[int, int, str]:
    """Where the authority of URL ``text`` starts and ends; its ``user:password`` ('' if none)."""
    match = _URL_START.match(text)
    if match is None:
        return 0, 0, ""
    start, end = match.end(), len(text)
    for stop in "/?#":
        found = text.find(stop, start)
        if found != -1:
            end = min(end, found)
    userinfo, at, _ = text[start:end].rpartition("@")
    return start, end, userinfo if at and ":" in userinfo else ""


def url_secrets(url: str) -> list[str]:
    """The credentials written into ``url``: its password and secret query values."""
    text = str(url)
    found = [value for _, value in _SECRET_PARAM.findall(text) if value]
    password = _userinfo(text)[2].partition(":")[2]
    return [password, *found] if password else found


def redact_url(url: str) -> str:
    """``url`` with its password and every secret query value (:data:`_SECRET_PARAM`) as ``***``."""
    text = str(url)
    start, end, userinfo = _userinfo(text)
    if userinfo:
        user = userinfo.split(":", 1)[0]
        host = text[start:end].rpartition("@")[2]
        text = f"{text[:start]}{user}:{REDACTED}@{host}{text[end:]}"
    return _SECRET_PARAM.sub(rf"\1{REDACTED}", text)


_DEFAULT_MAX_TOKENS = 512


@dataclass(frozen=True)
class SamplingConfig:
    """Decoding parameters. Every field is part of the generation cache key."""

    temperature: float = 0.0
    top_p: float | None = None
    max_tokens: int | None = _DEFAULT_MAX_TOKENS
    stop: tuple[str, ...] | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.stop is not None and not isinstance(self.stop, tuple):
            object.__setattr__(self, "stop", tuple(self.stop))
        if self.temperature < 0:
            raise _config_error(f"SamplingConfig.temperature must be >= 0, got {self.temperature}")
        if self.max_tokens is not None and self.max_tokens <= 0:
            raise _config_error(f"SamplingConfig.max_tokens must be > 0, got {self.max_tokens}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "stop": list(self.stop) if self.stop is not None else None,
            "seed": self.seed,
        }

    def request_params(self) -> dict[str, Any]:
        """The fields that are set, as an OpenAI-style request sends them (``stop`` as a list)."""
        return {name: value for name, value in self.to_dict().items() if value is not None}

    @property
    def label(self) -> str:
        """Short id fragment that tells apart any two configs: ``t0.7`` plus the fields that
        differ from the defaults (``-p0.9`` top_p, ``-m256``/``-mnone`` max_tokens, ``-s7`` seed,
        ``-stop<hash>`` stop sequences)."""
        parts = [f"t{self.temperature:g}"]
        if self.top_p is not None:
            parts.append(f"p{self.top_p:g}")
        if self.max_tokens != _DEFAULT_MAX_TOKENS:
            parts.append("mnone" if self.max_tokens is None else f"m{self.max_tokens}")
        if self.seed is not None:
            parts.append(f"s{self.seed}")
        if self.stop is not None:
            digest = hashlib.sha256(json.dumps(list(self.stop)).encode()).hexdigest()[:6]
            parts.append(f"stop{digest}")
        return "-".join(parts)


@dataclass(frozen=True)
class ModelSpec:
    """A model to evaluate: ``provider`` picks the backend, ``identifier`` the model.

    ``options`` carries provider settings (``api_base``, ``api_key``, headers …). Values whose
    names look like credentials never appear in ``repr``, :meth:`to_dict`, cache keys or manifests.
    """

    identifier: str
    provider: str = "litellm"
    default_sampling: SamplingConfig | None = None
    options: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if not self.identifier or not isinstance(self.identifier, str):
            raise _config_error("ModelSpec.identifier must be a non-empty string")
        object.__setattr__(self, "options", dict(self.options))

    def __repr__(self) -> str:
        return (
            f"ModelSpec(identifier={self.identifier!r}, provider={self.provider!r}, "
            f"options={redact_options(self.options)!r})"
        )

    @property
    def api_base(self) -> str | None:
        value = self.options.get("api_base") or self.options.get("base_url")
        return str(value) if value else None

    @property
    def short_name(self) -> str:
        """Readable name for test ids: the identifier without its ``vendor/`` or module prefix."""
        name = self.identifier.rsplit("/", 1)[-1]
        if self.provider == "python":
            # "pkg.app:answer" / "pkg.app.answer" -> "app.answer"
            parts = name.replace(":", ".").split(".")
            name = ".".join(parts[-2:])
        return name

    def to_dict(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "provider": self.provider,
            "options": redact_options(self.options),
            "default_sampling": self.default_sampling.to_dict() if self.default_sampling else None,
        }


@dataclass(frozen=True)
class CellSpec:
    """One point of the plan's model × prompt × sampling product."""

    model: ModelSpec
    template_name: str
    sampling: SamplingConfig

    @property
    def cell_id(self) -> str:
        return f"{self.model.short_name}-{self.template_name}-{self.sampling.label}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "cell_id": self.cell_id,
            "model": self.model.to_dict(),
            "template": self.template_name,
            "sampling": self.sampling.to_dict(),
        }


@dataclass(slots=True)
class GenerationTask:
    """One request: a cell applied to one dataset row, for one sample index."""

    cell: CellSpec
    row_id: str
    sample_index: int
    messages: tuple[ConversationMessage, ...]
    reference: Any = None
    row: Mapping[str, Any] | None = None
    cache_key: str = ""

    @property
    def model(self) -> ModelSpec:
        return self.cell.model

    @property
    def sampling(self) -> SamplingConfig:
        return self.cell.sampling

    @property
    def task_id(self) -> str:
        return f"{self.cell.cell_id}/{self.row_id}#{self.sample_index}"

    @property
    def prompt_text(self) -> str:
        """The last user message, for providers that take a single string."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return message.get("content", "")
        return self.messages[-1].get("content", "") if self.messages else ""


@dataclass(slots=True)
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(slots=True)
class ProviderResponse:
    """What a provider returns for one successful request."""

    text: str
    usage: TokenUsage | None = None
    cost: float | None = None
    finish_reason: str | None = None


@dataclass(slots=True)
class GenerationError:
    """Why a task produced no text after all retries; ``kind``: transient/permanent/cache/budget."""

    kind: str
    type: str
    message: str
    status_code: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "type": self.type,
            "message": self.message,
            "status_code": self.status_code,
        }


@dataclass(slots=True)
class GenerationRecord:
    """The outcome of one task: text on success, ``error`` otherwise."""

    task: GenerationTask
    text: str | None = None
    usage: TokenUsage | None = None
    cost: float | None = None
    latency: float = 0.0
    finish_reason: str | None = None
    error: GenerationError | None = None
    attempts: int = 0
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


@dataclass(slots=True)
class MetricScore:
    name: str
    value: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class EvaluationRecord:
    """A scored generation. With a generation error, ``scores`` is empty and ``error`` is set."""

    generation: GenerationRecord
    prediction: str | None = None
    scores: dict[str, MetricScore] = field(default_factory=dict)
    extraction_error: str | None = None
    #: Metrics that could not score this sample (e.g. a judge call failed), by metric name.
    metric_errors: dict[str, str] = field(default_factory=dict)

    @property
    def task(self) -> GenerationTask:
        return self.generation.task

    @property
    def row_id(self) -> str:
        return self.generation.task.row_id

    @property
    def cell_id(self) -> str:
        return self.generation.task.cell.cell_id

    @property
    def error(self) -> GenerationError | None:
        return self.generation.error

    @property
    def extraction_failed(self) -> bool:
        return self.extraction_error is not None


def canonical_metric_name(name: str) -> str:
    """``exact_match`` / ``exact-match`` / ``ExactMatch`` → ``exactmatch`` (lookup key)."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


@dataclass
class MetricAggregate:
    """Summary of one metric over a cell: mean, standard error and a 95% interval."""

    name: str
    count: int
    mean: float
    stderr: float
    ci_low: float
    ci_high: float
    ci_method: str
    values: list[float] = field(default_factory=list, repr=False)
    sample_ids: list[str] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "count": self.count,
            "mean": _finite(self.mean),
            "stderr": _finite(self.stderr),
            "ci_low": _finite(self.ci_low),
            "ci_high": _finite(self.ci_high),
            "ci_method": self.ci_method,
        }


class MetricMap(dict[str, MetricAggregate]):
    """A dict of aggregates that also answers to snake_case or any-case metric names."""

    def _resolve(self, name: str) -> str | None:
        if dict.__contains__(self, name):
            return name
        wanted = canonical_metric_name(name)
        for key in self.keys():
            if canonical_metric_name(key) == wanted:
                return key
        return None

    def __getitem__(self, name: str) -> MetricAggregate:
        key = self._resolve(name)
        if key is None:
            available = ", ".join(sorted(self.keys())) or "none"
            raise KeyError(f"no metric named {name!r}; available: {available}")
        return dict.__getitem__(self, key)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._resolve(name) is not None

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        key = self._resolve(name)
        return default if key is None else dict.__getitem__(self, key)


def _finite(value: float) -> float | None:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def _config_error(message: str) -> Exception:
    from ..errors import ConfigurationError

    return ConfigurationError(message)
