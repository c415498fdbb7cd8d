"""The one place that turns an :class:`EvaluationRequest` into plan, pipeline, runner and cache."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.protocols import EvaluationPipelineProtocol
from ..generation.plan import GenerationPlan
from .request import EvaluationRequest, PlanAxes, ScoringConfig

if TYPE_CHECKING:  # pragma: no cover
    from ..core.reports import ExperimentReport
    from .orchestrator import ExperimentOrchestrator

__all__ = ["AssembledRun", "build_orchestrator", "build_pipeline", "build_plan"]


def build_plan(
    axes: PlanAxes, *, id_field: str = "id", reference_field: str | None = None
) -> GenerationPlan:
    """The generation plan of ``axes`` (validates template names and cell ids)."""
    return GenerationPlan(
        templates=list(axes.templates),
        models=list(axes.models),
        sampling_parameters=list(axes.samplings),
        dataset_id_field=id_field,
        reference_field=reference_field,
        num_samples=axes.num_samples,
    )


def build_pipeline(scoring: ScoringConfig) -> EvaluationPipelineProtocol:
    """``scoring.pipeline``, or an ``EvaluationPipeline`` of its extractor and metrics."""
    if scoring.pipeline is not None:
        return scoring.pipeline
    from ..evaluation import get_extractor, get_metric
    from ..evaluation.pipeline import EvaluationPipeline

    return EvaluationPipeline(
        extractor=get_extractor(scoring.extractor),
        metrics=[get_metric(m) for m in scoring.metrics],
    )


@dataclass
class AssembledRun:
    """An orchestrator ready to run the request's rows; :meth:`run` closes the runner after."""

    orchestrator: ExperimentOrchestrator
    rows: list[Any]
    request: EvaluationRequest
    owned_storage: Any = None  # a store opened from a URL or folder name, closed after the run
    owned_backend: Any = None  # an engine built from a name, shut down after the run
    engine_scoring: Any = None  # scoring on the engine: its workers' processes stop after the run

    def run(
        self,
        *,
        progress: Callable[[Any], None] | None = None,
        evaluation_batch_size: int = 100,
        finish: Callable[[ExperimentReport], None] | None = None,
    ) -> ExperimentReport:
        """Run the orchestrator; ``finish(report)`` completes the manifest before it is saved and
        runs before the runner, engine and store it owns are closed (e.g. to keep the run's
        samples in that store)."""
        request = self.request
        try:
            return self.orchestrator.run(
                dataset=self.rows,
                run_id=request.run_id,
                evaluation_batch_size=evaluation_batch_size,
                cells=list(request.cells) if request.cells is not None else None,
                progress=progress,
                finish=finish,
            )
        finally:
            if self.engine_scoring is not None:
                self.engine_scoring.close()
            self.orchestrator.runner.close()
            if self.owned_backend is not None:
                self.owned_backend.shutdown()
            if self.owned_storage is not None:
                self.owned_storage.close()


def build_orchestrator(request: EvaluationRequest) -> AssembledRun:
    """Assemble plan, pipeline, runner and cache of ``request`` into an orchestrator."""
    # The engine is imported when a run is assembled, not when a door parses its inputs.
    from ..generation.runner import GenerationRunner
    from ..providers.clients import check_client, client_for
    from .cache_manager import CacheManager
    from .orchestrator import ExperimentOrchestrator

    data = request.dataset
    plan = build_plan(request.plan, id_field=data.id_field, reference_field=data.reference_field)
    pipeline = build_pipeline(request.scoring)
    settings = request.run
    backend = owned_backend = settings.execution_backend
    if isinstance(backend, str):
        from ..backends import resolve_execution_backend

        backend = owned_backend = resolve_execution_backend(backend)
    else:
        owned_backend = None
    engine_scoring = None
    if request.scoring.on_engine:
        from ..backends.scoring import EngineScoring, check_scoring_backend

        check_scoring_backend(backend, "score_on_engine")  # before any store or engine opens
        pipeline = engine_scoring = EngineScoring(pipeline, backend)
    storage = owned = None
    if request.cache.effective_mode != "off":
        from ..storage.urls import open_storage

        storage = open_storage(request.cache.storage)  # a bad URL or password fails here
        owned = storage if storage is not request.cache.storage else None
    # A model the chosen client cannot serve fails here, before any request is sent.
    client = check_client(settings.client)
    for cell in request.cells if request.cells is not None else plan.cells:
        client_for(cell.model, client)
    runner = GenerationRunner(
        client=client,
        max_parallel=settings.max_parallel,
        max_retries=settings.max_retries,
        execution_backend=backend,
        timeout=settings.timeout,
        max_cost_usd=settings.max_cost_usd,
        processes=settings.processes,
    )
    cache = CacheManager(
        storage=storage,
        enable_cache=storage is not None,
        mode=request.cache.effective_mode,
    )
    orchestrator = ExperimentOrchestrator(
        generation_plan=plan,
        generation_runner=runner,
        evaluation_pipeline=pipeline,
        cache_manager=cache,
        dataset_info=dict(data.info),
        experiment=request.experiment,
    )
    return AssembledRun(
        orchestrator, list(data.rows), request, owned, owned_backend, engine_scoring
    )
