"""The orchestrator looks the cache up batch by batch while the first misses are already sent."""

from __future__ import annotations

from typing import Any

import pytest
from engine_support import MatchPipeline, ScriptedProvider

from pytest_themis.core.entities import GenerationTask, ModelSpec, SamplingConfig
from pytest_themis.errors import ConfigurationError
from pytest_themis.experiment.cache_manager import CacheManager
from pytest_themis.experiment.orchestrator import ExperimentOrchestrator
from pytest_themis.generation.plan import GenerationPlan
from pytest_themis.generation.router import ProviderRouter
from pytest_themis.generation.runner import GenerationRunner
from pytest_themis.generation.templates import PromptTemplate
from pytest_themis.storage import ExperimentStorage

ROWS = [{"id": f"r{i}", "q": f"{i}+{i}", "gold": str(2 * i)} for i in range(3000)]


class _RecordingStorage(ExperimentStorage):
    """Notes each batched lookup in a shared event list."""

    def __init__(self, path: Any, events: list[str]) -> None:
        super().__init__(path)
        self.events = events

    def get_many(self, keys: Any) -> dict[str, Any]:
        self.events.append("lookup")
        return super().get_many(keys)


def _orchestrator(tmp_path: Any, events: list[str], provider: ScriptedProvider, pipeline: Any):
    plan = GenerationPlan(
        [PromptTemplate("plain", "{q}")],
        [ModelSpec("m", "scripted")],
        [SamplingConfig()],
        reference_field="gold",
    )
    runner = GenerationRunner(
        ProviderRouter({"scripted": provider}), max_parallel=8, retry_base_delay=0.001
    )
    cache = CacheManager(_RecordingStorage(tmp_path / "store", events))
    return ExperimentOrchestrator(plan, runner, pipeline, cache)


def test_first_requests_go_out_before_the_last_lookup(tmp_path: Any) -> None:
    events: list[str] = []

    def note(task: GenerationTask, attempt: int) -> None:
        events.append("request")

    provider = ScriptedProvider(script=note)
    report = _orchestrator(tmp_path, events, provider, MatchPipeline()).run(ROWS, run_id="r")
    lookups = [i for i, e in enumerate(events) if e == "lookup"]
    assert len(lookups) == 6  # 3,000 tasks in batches of 512
    # The lookup thread runs at most a few batches ahead of the runner: the first request
    # precedes the later lookups instead of waiting for all of them.
    assert events.index("request") < lookups[-2]
    assert len(report.records) == 3000 and provider.total_calls == 3000
    assert not report.evaluation_report.incomplete


def test_a_partly_cached_run_counts_hits_from_every_batch(tmp_path: Any) -> None:
    events: list[str] = []
    provider = ScriptedProvider()
    _orchestrator(tmp_path, events, provider, MatchPipeline()).run(ROWS[::2], run_id="half")
    again = _orchestrator(tmp_path, events, ScriptedProvider(), MatchPipeline())
    report = again.run(ROWS, run_id="all")
    assert len(report.records) == 3000 and report.evaluation_report.cached == 1500
    assert [r.row_id for r in report.records] == [r["id"] for r in ROWS]


def test_a_pipeline_without_the_protocol_members_is_named() -> None:
    class Partial:
        metric_names = ["m"]
        fingerprint = "f"

        def evaluate(self, records: Any) -> list[Any]:
            return []

    plan = GenerationPlan([PromptTemplate("p", "{q}")], [ModelSpec("m", "scripted")], [])
    with pytest.raises(ConfigurationError, match="lacks to_dict, requires_reference, attach"):
        ExperimentOrchestrator(plan, None, Partial())
