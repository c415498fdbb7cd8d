"""The per-process themis session: datasets, default pipelines and the once-per-cell runs.

A cell's :class:`EvaluationReport` is computed once per process, keyed by (dataset fingerprint,
cell, pipeline fingerprint), however many items read it. Under xdist a file lock in the cache
folder makes a second worker wait for the first and then read its generations from the cache.
A cell runs as an :class:`~pytest_themis.experiment.request.EvaluationRequest` assembled by the
same builder ``evaluate()`` uses.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ..core.defaults import DEFAULT_MAX_PARALLEL, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from ..core.entities import CellSpec, EvaluationRecord
from ..core.hashing import dataset_fingerprint, stable_hash
from ..core.protocols import EvaluationPipelineProtocol
from ..core.reports import EvaluationReport
from ..errors import ThemisError
from ..experiment.request import (
    CacheSettings,
    DatasetConfig,
    EvaluationRequest,
    RunSettings,
    ScoringConfig,
)
from . import is_xdist_worker
from .options import ThemisOptions
from .progress import CellProgress
from .spec import DatasetSource, EvalSpec

__all__ = ["CellOutcome", "ThemisSession", "cell_result"]

try:  # POSIX only; without it, xdist workers may both generate a shared cell (cache still works)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


@dataclass
class CellOutcome:
    """A finished cell: its report and the JSON-able result sent to the controller."""

    key: str
    spec: EvalSpec
    cell: CellSpec
    report: EvaluationReport
    result: dict[str, Any]
    primary_metric: str | None
    records_by_sample: dict[tuple[str, int], EvaluationRecord] = field(default_factory=dict)

    def sample(self, row_id: str, sample_index: int = 0) -> EvaluationRecord | None:
        if not self.records_by_sample:
            self.records_by_sample = {
                (r.row_id, r.task.sample_index): r for r in self.report.records
            }
        return self.records_by_sample.get((row_id, sample_index))


def _fail(message: str) -> BaseException:
    return pytest.fail.Exception(message, pytrace=False)


class ThemisSession:
    """Everything themis keeps for one pytest process."""

    def __init__(self, config: pytest.Config, options: ThemisOptions, run_id: str) -> None:
        self.config = config
        self.options = options
        self.run_id = run_id
        self.is_worker = is_xdist_worker(config)
        self.specs: dict[str, EvalSpec] = {}
        self._experiments: dict[str, str] = {}
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._row_fps: dict[int, tuple[Any, str]] = {}
        self._row_info: dict[int, dict[str, Any]] = {}
        self.outcomes: dict[str, CellOutcome] = {}
        self.spent_usd = 0.0
        self._owned: list[Any] = []
        self._storage: Any = None
        self._storage_error: str | None = None
        self._backend: Any = None
        self._backend_error: str | None = None
        self._lock = threading.RLock()

    # -- collection -----------------------------------------------------------------------------

    def register(self, key: str, spec: EvalSpec) -> EvalSpec:
        """Remember ``spec``; tests declaring the same evaluation share one experiment name."""
        spec.name = self._experiments.setdefault(spec.signature(), spec.name)
        self.specs[key] = spec
        return spec

    # -- datasets -------------------------------------------------------------------------------

    def load_rows(self, source: DatasetSource) -> list[dict[str, Any]]:
        """Rows of ``source`` (loaded once per process), or a failure naming the fix."""
        key = stable_hash(source.signature())
        rows = self._rows.get(key)
        if rows is not None:
            return rows
        try:
            rows, info = self._load(source)
        except ThemisError as exc:
            raise _fail(f"themis dataset ({source.describe()}): {exc}") from None
        self._rows[key] = rows
        self._row_info[id(rows)] = info
        return rows

    def _load(self, source: DatasetSource) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        if source.kind == "preset":
            preset = source.preset
            data_dir = str(source.data_dir) if source.data_dir else None
            rows = list(preset.load(limit=source.limit, data_dir=data_dir))
            info = dict(preset.describe_source(data_dir), name=preset.name)
            return rows, info
        if source.kind == "file":
            from ..presets.loading import load_local_file

            assert source.path is not None
            rows = list(load_local_file(source.path, limit=source.limit))
            return rows, {"name": source.path.name, "source": str(source.path)}
        if source.kind == "rows":
            rows = [dict(r) for r in source.rows]
            if source.limit is not None:
                rows = rows[: source.limit]
            return rows, {"name": "marker", "source": "in-memory"}
        raise _fail(
            "no dataset: pass dataset= (a preset name, a file path or a list of dicts) to "
            "@pytest.mark.themis, or override the themis_dataset fixture"
        )

    def fingerprint(self, rows: Any) -> str:
        cached = self._row_fps.get(id(rows))
        if cached is not None and cached[0] is rows:
            return cached[1]
        fp = dataset_fingerprint(rows)
        self._row_fps[id(rows)] = (rows, fp)
        return fp

    def dataset_info(self, rows: Any) -> dict[str, Any]:
        info = dict(self._row_info.get(id(rows)) or {"name": "fixture", "source": "in-memory"})
        info["fingerprint"] = self.fingerprint(rows)
        info.setdefault("revision", None)
        return {k: v for k, v in info.items() if k != "local_path" or v is not None}

    # -- pipelines ------------------------------------------------------------------------------

    def default_metrics(self, spec: EvalSpec) -> list[Any]:
        from ..evaluation import get_metric

        try:
            if spec.metrics:
                return [get_metric(m) for m in spec.metrics]
            if spec.preset is not None:
                return list(spec.preset.metrics())
        except ThemisError as exc:
            raise _fail(f"themis metrics of {spec.name}: {exc}") from None
        raise _fail(
            f"{spec.name}: no metrics: pass metrics=['exact_match', ...] or pipeline=... to "
            "@pytest.mark.themis, or override the themis_metrics / themis_pipeline fixture"
        )

    def default_extractor(self, spec: EvalSpec) -> Any:
        from ..evaluation import get_extractor

        try:
            if spec.extractor is not None:
                return get_extractor(spec.extractor)
            if spec.preset is not None:
                return spec.preset.extractor()
            return get_extractor("identity")
        except ThemisError as exc:
            raise _fail(f"themis extractor of {spec.name}: {exc}") from None

    def build_pipeline(self, extractor: Any, metrics: Any) -> EvaluationPipelineProtocol:
        from ..evaluation.pipeline import EvaluationPipeline

        try:
            pipeline = EvaluationPipeline(extractor=extractor, metrics=list(metrics))
        except ThemisError as exc:
            raise _fail(f"themis pipeline: {exc}") from None
        self._owned.append(pipeline)
        return pipeline

    def default_storage(self) -> Any:
        """The run's generation cache (None with ``--themis-cache=off``)."""
        if self.options.cache_mode == "off":
            return None
        if self._storage is None:
            from ..storage import open_storage

            if self._storage_error is None:
                try:
                    self._storage = open_storage(self.options.storage or self.options.cache_dir)
                except ThemisError as exc:
                    self._storage_error = f"themis storage: {exc}"
            if self._storage_error is not None:  # every item fails with the one line, no retry
                raise _fail(self._storage_error)
            self._owned.append(self._storage)
        return self._storage

    def default_backend(self) -> Any:
        """The ``--themis-backend`` engine, opened (None: the runner's default engine).

        Built once from its name and owned by the session, which shuts it down at the end.
        """
        name = self.options.backend
        if name is None:
            return None
        if self._backend is None:
            from ..backends import resolve_execution_backend

            if self._backend_error is None:
                backend = None
                try:
                    backend = resolve_execution_backend(name)
                    if backend is not None:
                        backend.open()  # an unreachable address or a missing extra fails here
                except ThemisError as exc:
                    self._backend_error = f"--themis-backend {name}: {exc}"
                    if backend is not None:
                        with contextlib.suppress(Exception):
                            backend.shutdown()
                else:
                    self._backend = backend
            if self._backend_error is not None:  # every item fails with the one line
                raise _fail(self._backend_error)
        return self._backend

    # -- running --------------------------------------------------------------------------------

    def cell_key(
        self, spec: EvalSpec, cell: CellSpec, rows: Any, pipeline: EvaluationPipelineProtocol
    ) -> str:
        template = spec.plan.template(cell.template_name)
        cell_part = [
            cell.to_dict(),
            template.to_dict(),
            spec.epochs,
            spec.id_field,
            spec.reference_field,
        ]
        return stable_hash([self.fingerprint(rows), cell_part, pipeline.fingerprint], 24)

    def run_cell(
        self,
        spec: EvalSpec,
        cell: CellSpec,
        rows: Any,
        pipeline: EvaluationPipelineProtocol,
        *,
        backend: Any = None,
        storage: Any = None,
        label: str | None = None,
    ) -> tuple[CellOutcome, bool]:
        """The cell's outcome and whether this call computed it (False: reused)."""
        key = self.cell_key(spec, cell, rows, pipeline)
        with self._lock:
            found = self.outcomes.get(key)
            if found is not None:
                return found, False
            with self._cross_process_lock(key):
                outcome = self._execute(key, spec, cell, rows, pipeline, backend, storage, label)
            self.outcomes[key] = outcome
            return outcome, True

    def _execute(
        self,
        key: str,
        spec: EvalSpec,
        cell: CellSpec,
        rows: Any,
        pipeline: EvaluationPipelineProtocol,
        backend: Any,
        storage: Any,
        label: str | None,
    ) -> CellOutcome:
        from ..experiment.builder import build_orchestrator

        opts = self.options
        budget = opts.get("max_cost_usd")
        if budget is not None:
            budget = max(0.0, float(budget) - self.spent_usd)
        request = EvaluationRequest(
            experiment=spec.name,
            dataset=DatasetConfig(
                rows=rows,
                info=self.dataset_info(rows),
                id_field=spec.id_field,
                reference_field=spec.reference_field,
            ),
            plan=spec.axes,
            scoring=ScoringConfig(pipeline=pipeline, on_engine=opts.score_on_engine),
            run=RunSettings(
                max_parallel=_first(opts.get("max_parallel"), DEFAULT_MAX_PARALLEL),
                max_retries=_first(opts.get("max_retries"), DEFAULT_MAX_RETRIES),
                timeout=_first(opts.get("timeout"), DEFAULT_TIMEOUT),
                max_cost_usd=budget,
                # under xdist the workers already use the cores; no nested processes
                processes=1 if self.is_worker else "auto",
                execution_backend=backend,
                client=opts.get("client"),
            ),
            cache=CacheSettings(mode=opts.cache_mode, storage=storage),
            cells=(cell,),
            run_id=f"{self.run_id}-{key[:12]}",
        )
        progress = CellProgress.for_config(self.config, label or cell.cell_id)
        try:
            report = build_orchestrator(request).run(progress=progress)
        except ThemisError as exc:
            raise _fail(f"{spec.name} [{cell.cell_id}]: {exc}") from None
        finally:
            if progress is not None:
                progress.close()
        cell_report = report.cells[cell.cell_id]
        self.spent_usd += cell_report.cost
        primary = spec.primary_metric
        if primary is None or primary not in cell_report.metrics:
            primary = _first_metric(pipeline, cell_report)
        result = cell_result(key, spec, cell_report, report.manifest, primary)
        return CellOutcome(key, spec, cell, cell_report, result, primary)

    @contextlib.contextmanager
    def _cross_process_lock(self, key: str) -> Iterator[None]:
        if not self.is_worker or fcntl is None or self.options.cache_mode == "off":
            yield
            return
        lock_dir = self.options.cache_dir / "locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        with open(lock_dir / f"{key}.lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def close(self) -> None:
        if self._backend is not None:
            with contextlib.suppress(Exception):
                self._backend.shutdown()
            self._backend = None
        for owned in self._owned:
            with contextlib.suppress(Exception):
                owned.close()
        self._owned.clear()


def _first(value: Any, default: Any) -> Any:
    return default if value is None else value


def _first_metric(pipeline: EvaluationPipelineProtocol, report: EvaluationReport) -> str | None:
    names = list(pipeline.metric_names or report.metrics.keys())
    return names[0] if names else None


def cell_result(
    key: str,
    spec: EvalSpec,
    report: EvaluationReport,
    manifest: dict[str, Any],
    primary: str | None,
) -> dict[str, Any]:
    """The JSON-able summary of one cell (what a worker sends the controller)."""
    return {
        "key": key,
        "experiment": spec.name,
        "cell_id": report.cell_id,
        "primary_metric": primary,
        "metrics": {
            name: {
                "mean": agg.mean,
                "ci_low": agg.ci_low,
                "ci_high": agg.ci_high,
                "count": agg.count,
            }
            for name, agg in report.metrics.items()
        },
        "total": report.total,
        "cached": report.cached,
        "generated": report.generated,
        "errors": report.errors,
        "extraction_failures": report.extraction_failures,
        "tokens": report.usage.total_tokens,
        "cost": report.cost,
        "duration": report.duration,
        "incomplete": report.incomplete,
        "manifest": manifest,
    }
