"""What one themis test (or preset) evaluates: built from the marker, the options and a preset.

An :class:`EvalSpec` is built at collection time. It fixes the plan's models × prompts × sampling
(so items can be parametrized per cell) and remembers where the dataset and the pipeline come from;
the rows and the pipeline themselves are fixtures, resolved when an item runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..core.entities import CellSpec, ModelSpec, SamplingConfig
from ..core.hashing import stable_hash
from ..errors import ThemisError
from ..experiment.builder import build_plan
from ..experiment.request import PlanAxes, parse_prompts, parse_samplings
from ..generation.plan import GenerationPlan
from ..generation.templates import PromptTemplate
from .options import ThemisOptions

__all__ = [
    "MARKER_KEYWORDS",
    "DatasetSource",
    "EvalSpec",
    "build_marker_spec",
    "build_preset_spec",
]

MARKER_KEYWORDS = (
    "dataset",
    "prompts",
    "models",
    "sampling",
    "pipeline",
    "reference_field",
    "id_field",
    "limit",
    "epochs",
    "per_sample",
    "metrics",
    "extractor",
)


@dataclass(frozen=True)
class DatasetSource:
    """Where the default ``themis_dataset`` fixture gets its rows.

    ``kind`` is ``preset`` (``preset`` set), ``file`` (``path`` set), ``rows`` (``rows`` set) or
    ``none`` (the test must override ``themis_dataset``).
    """

    kind: str
    preset: Any = None
    path: Path | None = None
    rows: tuple[Mapping[str, Any], ...] = ()
    limit: int | None = None
    data_dir: Path | None = None

    def describe(self) -> str:
        if self.kind == "preset":
            return f"preset {self.preset.name!r}"
        if self.kind == "file":
            return f"file {str(self.path)!r}"
        if self.kind == "rows":
            return f"{len(self.rows)} in-line rows"
        return "no dataset"

    def signature(self) -> Any:
        if self.kind == "preset":
            return ["preset", self.preset.name, self.limit, str(self.data_dir)]
        if self.kind == "file":
            return ["file", str(self.path), self.limit]
        if self.kind == "rows":
            return ["rows", [dict(r) for r in self.rows], self.limit]
        return ["none"]


@dataclass
class EvalSpec:
    """A resolved evaluation: plan axes, dataset source and pipeline ingredients."""

    name: str
    source: DatasetSource
    templates: list[PromptTemplate]
    models: list[ModelSpec]
    samplings: list[SamplingConfig]
    id_field: str
    reference_field: str | None
    epochs: int
    per_sample: bool = False
    metrics: Sequence[Any] | None = None
    extractor: Any = None
    pipeline: Any = None
    preset: Any = None
    _plan: GenerationPlan | None = field(default=None, repr=False)

    @property
    def axes(self) -> PlanAxes:
        """The plan's axes, as the shared request holds them."""
        return PlanAxes(
            templates=tuple(self.templates),
            models=tuple(self.models),
            samplings=tuple(self.samplings),
            num_samples=self.epochs,
        )

    @property
    def plan(self) -> GenerationPlan:
        if self._plan is None:
            self._plan = build_plan(
                self.axes, id_field=self.id_field, reference_field=self.reference_field
            )
        return self._plan

    @property
    def cells(self) -> list[CellSpec]:
        return self.plan.cells

    @property
    def primary_metric(self) -> str | None:
        """The preset's primary metric when its pipeline is used (else the pipeline's first)."""
        if self.pipeline is None and not self.metrics and self.preset is not None:
            return str(self.preset.primary_metric)
        return None

    def signature(self) -> str:
        """Identity of what this spec evaluates, independent of the test that declares it."""
        return stable_hash(
            [
                self.source.signature(),
                self.plan.to_dict(),
                [repr(m) for m in self.metrics or ()],
                repr(self.extractor),
                repr(self.pipeline),
            ]
        )


# -- building ---------------------------------------------------------------------------------


def _fail(where: str, message: str) -> pytest.UsageError:
    return pytest.UsageError(f"{where}: {message}")


def _preset_or_none(name: str) -> Any:
    from ..presets import get_benchmark_preset, list_benchmarks

    if name in list_benchmarks():
        return get_benchmark_preset(name)
    return None


def _dataset_source(
    value: Any, where: str, base_dirs: Sequence[Path], limit: int | None, options: ThemisOptions
) -> DatasetSource:
    if value is None:
        return DatasetSource("none", limit=limit)
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        preset = _preset_or_none(text) if isinstance(value, str) else None
        if preset is not None:
            return DatasetSource("preset", preset=preset, limit=limit, data_dir=options.data_dir)
        for base in base_dirs:
            candidate = (base / os.path.expanduser(text)).resolve()
            if candidate.is_file():
                return DatasetSource("file", path=candidate, limit=limit)
        from ..presets import list_benchmarks

        looked = ", ".join(dict.fromkeys(map(str, base_dirs)))  # each folder once
        raise _fail(
            where,
            f"dataset={text!r} is neither a preset ({', '.join(list_benchmarks())}) nor an "
            f"existing file (looked in {looked}); pass a preset "
            "name, a path to a .jsonl/.json/.csv/.parquet file or a list of dicts",
        )
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        rows = tuple(value)
        bad = next((i for i, r in enumerate(rows) if not isinstance(r, Mapping)), None)
        if bad is not None:
            raise _fail(
                where,
                f"dataset row {bad} is a {type(rows[bad]).__name__}; a dataset list holds dicts",
            )
        if not rows:
            raise _fail(where, "dataset=[] is empty; give at least one row")
        return DatasetSource("rows", rows=rows, limit=limit)
    raise _fail(
        where,
        f"dataset must be a preset name, a file path or a list of dicts, got "
        f"{type(value).__name__}",
    )


def _templates(value: Any, preset: Any, where: str) -> list[PromptTemplate]:
    try:
        return list(parse_prompts(value, preset.prompt if preset is not None else None))
    except ThemisError as exc:
        raise _fail(where, f"{exc} (the themis marker's prompts=)") from None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, ModelSpec, SamplingConfig, Mapping)) or callable(value):
        return [value]
    return list(value)


def _models(marker: Any, preset: Any, options: ThemisOptions, where: str) -> list[ModelSpec]:
    from ..providers.models import parse_model

    chosen: list[Any] = (
        options.cli_models
        or _as_list(marker)
        or options.ini_models
        or ([preset.default_model] if preset is not None and preset.default_model else [])
    )
    if not chosen:
        raise _fail(
            where,
            "no model to evaluate: pass models=[...] to the themis marker, --themis-model ID on "
            "the command line or themis_models in the ini file",
        )
    api_base = options.get("api_base")
    out: list[ModelSpec] = []
    for item in chosen:
        try:
            if isinstance(item, ModelSpec):
                spec = item
                if api_base and spec.provider == "litellm" and not spec.api_base:
                    spec = parse_model(spec, api_base=api_base)
            elif isinstance(item, str) and not item.startswith(("fake:", "python:")) and api_base:
                spec = parse_model(item, api_base=api_base)
            else:
                spec = parse_model(item)
        except ThemisError as exc:
            raise _fail(where, f"model {item!r}: {exc}") from None
        out.append(spec)
    return out


def _samplings(value: Any, preset: Any, where: str) -> list[SamplingConfig]:
    try:
        return list(parse_samplings(value, preset.sampling if preset is not None else None))
    except ThemisError as exc:
        raise _fail(where, str(exc)) from None


def _int_kw(value: Any, name: str, minimum: int, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(where, f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def validate_marker_kwargs(args: Sequence[Any], kwargs: Mapping[str, Any], where: str) -> None:
    """Reject positional arguments and unknown keywords, naming them."""
    if args:
        raise _fail(where, "@pytest.mark.themis takes keyword arguments only (dataset=..., ...)")
    unknown = sorted(set(kwargs) - set(MARKER_KEYWORDS))
    if unknown:
        raise _fail(
            where,
            f"unknown themis marker keyword(s) {', '.join(unknown)}; accepted: "
            f"{', '.join(MARKER_KEYWORDS)}",
        )


def build_marker_spec(
    kwargs: Mapping[str, Any],
    options: ThemisOptions,
    *,
    name: str,
    where: str,
    test_dir: Path,
) -> EvalSpec:
    """An :class:`EvalSpec` from ``@pytest.mark.themis(**kwargs)`` and the options."""
    limit = options.get("limit", _int_kw(kwargs.get("limit"), "limit", 1, where))
    epochs = options.get("epochs", _int_kw(kwargs.get("epochs"), "epochs", 1, where)) or 1
    per_sample = kwargs.get("per_sample", False)
    if not isinstance(per_sample, bool):
        raise _fail(where, f"per_sample must be True or False, got {per_sample!r}")
    bases = [test_dir, options.rootdir, options.invocation_dir]
    source = _dataset_source(kwargs.get("dataset"), where, bases, limit, options)
    preset = source.preset
    for key in ("reference_field", "id_field"):
        value = kwargs.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise _fail(where, f"{key} must be a non-empty string, got {value!r}")
    metrics = kwargs.get("metrics")
    if metrics is not None:
        metrics = list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
        if not metrics:
            raise _fail(where, "metrics=[] is empty; name at least one metric")
    if kwargs.get("pipeline") is not None and (metrics or kwargs.get("extractor") is not None):
        raise _fail(where, "pass either pipeline= or metrics=/extractor=, not both")
    spec = EvalSpec(
        name=name,
        source=source,
        templates=_templates(kwargs.get("prompts"), preset, where),
        models=_models(kwargs.get("models"), preset, options, where),
        samplings=_samplings(kwargs.get("sampling"), preset, where),
        id_field=kwargs.get("id_field") or (preset.id_field if preset is not None else "id"),
        reference_field=kwargs.get("reference_field")
        or (preset.reference_field if preset is not None else None),
        epochs=int(epochs),
        per_sample=per_sample,
        metrics=metrics,
        extractor=kwargs.get("extractor"),
        pipeline=kwargs.get("pipeline"),
        preset=preset,
    )
    _check_plan(spec, where)
    return spec


def build_preset_spec(name: str, options: ThemisOptions) -> EvalSpec:
    """An :class:`EvalSpec` for ``--themis-preset NAME`` (no test file involved)."""
    from ..presets import get_benchmark_preset

    where = f"--themis-preset {name}"
    try:
        preset = get_benchmark_preset(name)
    except ThemisError as exc:
        raise _fail(where, str(exc)) from None
    limit = options.get("limit")
    source = DatasetSource("preset", preset=preset, limit=limit, data_dir=options.data_dir)
    spec = EvalSpec(
        name=preset.name,
        source=source,
        templates=[preset.prompt],
        models=_models(None, preset, options, where),
        samplings=[preset.sampling],
        id_field=preset.id_field,
        reference_field=preset.reference_field,
        epochs=int(options.get("epochs") or 1),
        preset=preset,
    )
    _check_plan(spec, where)
    return spec


def _check_plan(spec: EvalSpec, where: str) -> None:
    try:
        spec.plan  # noqa: B018 - builds and validates the plan (duplicate cell ids ...)
    except ThemisError as exc:
        raise _fail(where, str(exc)) from None
