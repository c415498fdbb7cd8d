"""The :class:`BenchmarkPreset` value: where a benchmark's data lives and how it is scored."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.entities import SamplingConfig
from ..errors import ConfigurationError, DatasetError, ThemisError
from ..generation.templates import PromptTemplate
from .loading import (
    LOCAL_SUFFIXES,
    check_limit,
    file_fingerprint,
    load_from_hub,
    load_local_file,
    resolve_data_dir,
)

__all__ = ["BenchmarkPreset", "RowPreparer"]

#: ``prepare_row(row, label) -> row``: validate one raw row and add derived fields (e.g. ``gold``);
#: ``label`` describes the row for error messages. Raise :class:`DatasetError` on bad rows.
RowPreparer = Callable[[dict[str, Any], str], dict[str, Any]]
Factory = str | Callable[[], Any]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_EXTRACTORS_MODULE = "pytest_themis.evaluation.extractors"
_METRICS_MODULE = "pytest_themis.evaluation.metrics"


def _default_sampling() -> SamplingConfig:
    return SamplingConfig(temperature=0.0, max_tokens=512)


def _find_class(module_name: str, name: str) -> Any:
    """``name`` from ``module_name``, or from one of its submodules when it is a package."""
    module = importlib.import_module(module_name)
    if inspect.isclass(getattr(module, name, None)):
        return getattr(module, name)
    for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
        if info.name.startswith("_"):
            continue
        submodule = importlib.import_module(f"{module_name}.{info.name}")
        if inspect.isclass(getattr(submodule, name, None)):
            return getattr(submodule, name)
    raise AttributeError(f"no {name!r} in {module_name}")


def _from_registry(kind: str, name: str) -> Any:
    """``name`` looked up in the evaluation registry (``"exact_match"``, ``"gsm8k"`` …)."""
    from ..evaluation import registry

    getter = registry.get_extractor if kind == "extractor" else registry.get_metric
    return getter(name)


def _build(factory: Factory, module: str, what: str, preset: str) -> Any:
    if callable(factory):
        return factory()
    try:
        return _find_class(module, factory)()
    except (ImportError, AttributeError) as exc:
        problem = str(exc)
    try:
        return _from_registry(what, factory)
    except (ImportError, AttributeError, ThemisError) as exc:
        problem = f"{problem}; {exc}"
    raise ConfigurationError(
        f"benchmark {preset!r}: {what} {factory!r} is neither a class in {module} nor a "
        f"registered {what} ({problem}); pass a factory callable or a known name"
    )


@dataclass(frozen=True, eq=False)
class BenchmarkPreset:
    """A named benchmark: data source, prompt, extractor, metrics and sampling defaults.

    ``source`` is a Hugging Face dataset path (``None`` for data shipped in the package, given
    as ``packaged_file``). ``fields`` lists the dataset's own field names that every row must
    have; ``prepare_row`` validates a row and adds derived fields such as ``gold``.
    ``extractor_factory`` and ``metric_factories`` are class names in
    ``pytest_themis.evaluation.extractors`` / ``.metrics`` or zero-argument callables; the
    metrics default to ``[primary_metric]``.
    """

    name: str
    description: str
    source: str | None
    config: str | None
    split: str
    revision: str | None
    id_field: str
    reference_field: str
    prompt: PromptTemplate
    primary_metric: str
    default_model: str | None = None
    #: ``--themis-preset`` items gate the primary metric at this value unless a
    #: ``--themis-fail-under`` is given (None: no default gate).
    default_fail_under: float | None = None
    sampling: SamplingConfig = field(default_factory=_default_sampling)
    extractor_factory: Factory = "IdentityExtractor"
    metric_factories: tuple[Factory, ...] = ()
    fields: tuple[str, ...] = ()
    prepare_row: RowPreparer | None = None
    packaged_file: str | os.PathLike[str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigurationError(
                f"benchmark name {self.name!r} must start with a letter or digit and contain "
                "only letters, digits, '_', '.' and '-' (it names the '<name>.jsonl' file)"
            )
        if not isinstance(self.prompt, PromptTemplate):
            raise ConfigurationError(
                f"benchmark {self.name!r}: prompt must be a PromptTemplate, "
                f"got {type(self.prompt).__name__}"
            )
        if self.source is None and self.packaged_file is None:
            raise ConfigurationError(
                f"benchmark {self.name!r} has neither a Hub 'source' nor a 'packaged_file'; "
                "give one of them"
            )
        if not self.split:
            raise ConfigurationError(f"benchmark {self.name!r}: split must be non-empty")
        object.__setattr__(self, "fields", tuple(self.fields) or self.prompt.fields)
        object.__setattr__(self, "metric_factories", tuple(self.metric_factories))

    # -- scoring ----------------------------------------------------------------------------

    def extractor(self) -> Any:
        """A fresh extractor instance for this benchmark."""
        return _build(self.extractor_factory, _EXTRACTORS_MODULE, "extractor", self.name)

    def metrics(self) -> list[Any]:
        """Fresh metric instances; the first one is the primary metric."""
        factories = self.metric_factories or (self.primary_metric,)
        return [_build(f, _METRICS_MODULE, "metric", self.name) for f in factories]

    def pipeline(self) -> Any:
        """An ``EvaluationPipeline`` made of :meth:`extractor` and :meth:`metrics`."""
        from ..evaluation.pipeline import EvaluationPipeline

        return EvaluationPipeline(extractor=self.extractor(), metrics=self.metrics())

    # -- data -------------------------------------------------------------------------------

    def expected_files(self) -> list[str]:
        """File names looked for in a data directory."""
        return [f"{self.name}{suffix}" for suffix in LOCAL_SUFFIXES]

    def local_file(self, data_dir: str | os.PathLike[str] | None = None) -> Path | None:
        """The local copy to read: from ``data_dir`` / ``$THEMIS_DATA_DIR``, else the shipped
        file, else ``None`` (meaning: the Hub)."""
        directory = resolve_data_dir(data_dir)
        if directory is not None:
            if not directory.is_dir():
                raise DatasetError(
                    f"data directory {str(directory)!r} for benchmark {self.name!r} does not "
                    "exist; create it or fix --themis-data-dir / THEMIS_DATA_DIR / data_dir="
                )
            for candidate in self.expected_files():
                path = directory / candidate
                if path.is_file():
                    return path
            if self.packaged_file is None:
                raise DatasetError(
                    f"benchmark {self.name!r}: data directory {str(directory)!r} has none of "
                    f"{', '.join(self.expected_files())}; add one (fields: "
                    f"{', '.join(self.fields)}) or unset the data directory to use the Hub"
                )
        if self.packaged_file is not None:
            return Path(self.packaged_file)
        return None

    def load(
        self, limit: int | None = None, data_dir: str | os.PathLike[str] | None = None
    ) -> list[dict[str, Any]]:
        """Validated rows (each with ``id_field`` and ``reference_field``), the first ``limit``."""
        limit = check_limit(limit)
        path = self.local_file(data_dir)
        if path is not None:
            raw = load_local_file(path)
            origin = f"file {str(path)!r}"
        else:
            assert self.source is not None
            raw = load_from_hub(
                name=self.name,
                source=self.source,
                config=self.config,
                split=self.split,
                revision=self.revision,
                fields=self.fields,
            )
            origin = f"{self.source} split {self.split!r}"
        if not raw:
            raise DatasetError(f"benchmark {self.name!r}: {origin} has no rows")
        rows = [self._prepare(row, index, origin) for index, row in enumerate(raw)]
        return rows if limit is None else rows[:limit]

    def _prepare(self, row: dict[str, Any], index: int, origin: str) -> dict[str, Any]:
        row_id = row.get(self.id_field)
        label = f"row {index}" + (f" (id {row_id!r})" if row_id is not None else "")
        label = f"{label} of {origin}"
        missing = [name for name in self.fields if row.get(name) is None]
        if missing:
            raise DatasetError(
                f"benchmark {self.name!r}: {label} lacks field {missing[0]!r} (row fields: "
                f"{', '.join(k for k, v in row.items() if v is not None) or 'none'}); a local "
                f"copy must use the dataset's own fields: {', '.join(self.fields)}"
            )
        if self.prepare_row is not None:
            row = self.prepare_row(dict(row), label)
        if row.get(self.id_field) is None:
            row[self.id_field] = str(index)
        if row.get(self.reference_field) is None:
            raise DatasetError(
                f"benchmark {self.name!r}: {label} has no reference field "
                f"{self.reference_field!r}; add it to the data"
            )
        return row

    def describe_source(self, data_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """Where the data comes from, for the manifest.

        ``kind`` is ``hub`` (source, config, split and pinned revision; no file), ``local_file``
        (a ``--themis-data-dir`` copy: its path and SHA-256 — no Hub fields, since nothing proves
        the copy matches the pinned revision) or ``packaged`` (a file shipped with the package).
        """
        path = self.local_file(data_dir)
        if path is None:
            return {
                "kind": "hub",
                "source": self.source,
                "config": self.config,
                "split": self.split,
                "revision": self.revision,
                "local_path": None,
                "fingerprint": None,
            }
        digest = file_fingerprint(path)
        shipped = self.packaged_file is not None and Path(path) == Path(self.packaged_file)
        info: dict[str, Any] = {
            "kind": "packaged" if shipped else "local_file",
            "source": str(path),
            "local_path": str(path),
            "fingerprint": digest,
            "file_sha256": digest,
        }
        if info["kind"] == "packaged":
            info.update(source=None, split=self.split)
        return info

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "config": self.config,
            "split": self.split,
            "revision": self.revision,
            "id_field": self.id_field,
            "reference_field": self.reference_field,
            "prompt": self.prompt.to_dict(),
            "primary_metric": self.primary_metric,
            "default_model": self.default_model,
            "sampling": self.sampling.to_dict(),
        }
