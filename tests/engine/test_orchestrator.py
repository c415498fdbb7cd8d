"""Orchestrator + cache manager + storage: counts, resume, replay, refresh, reports, manifest."""

from __future__ import annotations

import sqlite3
import warnings

import pytest
from engine_support import MatchPipeline, ScriptedProvider

from pytest_themis.backends import ExecutionBackend
from pytest_themis.core.entities import ModelSpec, SamplingConfig
from pytest_themis.errors import ConfigurationError, ServerError
from pytest_themis.experiment.cache_manager import CacheManager, generation_key
from pytest_themis.experiment.manifest import strip_volatile, validate_manifest
from pytest_themis.experiment.orchestrator import ExperimentOrchestrator
from pytest_themis.generation.plan import GenerationPlan
from pytest_themis.generation.router import ProviderRouter
from pytest_themis.generation.runner import GenerationRunner
from pytest_themis.generation.templates import PromptTemplate
from pytest_themis.storage import CacheIntegrityWarning, ExperimentStorage


def _plan(n_models=2, temps=(0.0, 0.7), reference_field="gold"):
    return GenerationPlan(
        [PromptTemplate("plain", "{q}")],
        [
            ModelSpec(f"m{i}", "scripted", options={"api_key": "sk-canary-123"})
            for i in range(n_models)
        ],
        [SamplingConfig(temperature=t) for t in temps],
        reference_field=reference_field,
    )


def _orch(provider, cache, plan=None, **runner_kw):
    runner_kw.setdefault("retry_base_delay", 0.001)
    runner = GenerationRunner(ProviderRouter({"scripted": provider}), **runner_kw)
    return ExperimentOrchestrator(plan or _plan(), runner, MatchPipeline(), cache)


def test_counts_metrics_and_cells(tmp_path, rows):
    provider = ScriptedProvider()
    report = _orch(provider, CacheManager(ExperimentStorage(tmp_path))).run(rows, run_id="r")
    assert len(report.records) == 200 and provider.total_calls == 200
    assert set(report.cells) == {"m0-plain-t0", "m0-plain-t0.7", "m1-plain-t0", "m1-plain-t0.7"}
    for cell in report.cells.values():
        assert cell.total == 50 and cell.generated == 50 and cell.cached == 0
        assert cell.metrics["ExactMatch"].mean == pytest.approx(0.8)
    assert report.metric("exact_match").count == 200
    assert report.metric("ExactMatch").ci_method == "wilson"
    # records come back in dataset order within each cell
    first_cell = [r.row_id for r in report.records[:50]]
    assert first_cell == [r["id"] for r in rows]


class _PreparingPipeline(MatchPipeline):
    def __init__(self) -> None:
        self.prepared = 0

    def prepare(self) -> None:
        self.prepared += 1


def test_pipeline_is_prepared_once_before_the_first_request(tmp_path, rows):
    pipeline = _PreparingPipeline()
    calls_when_prepared: list[int] = []
    provider = ScriptedProvider()
    original = pipeline.prepare

    def prepare() -> None:
        calls_when_prepared.append(provider.total_calls)
        original()

    pipeline.prepare = prepare  # type: ignore[method-assign]
    runner = GenerationRunner(ProviderRouter({"scripted": provider}), retry_base_delay=0.001)
    cache = CacheManager(ExperimentStorage(tmp_path))
    ExperimentOrchestrator(_plan(), runner, pipeline, cache).run(rows, run_id="r")
    assert calls_when_prepared == [0] and provider.total_calls == 200
    assert pipeline.prepared == 1


def test_identical_rerun_makes_no_requests(tmp_path, rows):
    provider = ScriptedProvider()
    storage = ExperimentStorage(tmp_path)
    first = _orch(provider, CacheManager(storage)).run(rows, run_id="r")
    second = _orch(provider, CacheManager(storage)).run(rows, run_id="r")
    assert provider.total_calls == 200
    assert all(c.cached == 50 for c in second.cells.values())
    assert strip_volatile(first.manifest) == strip_volatile(second.manifest)
    assert first.manifest["manifest_sha256"] == second.manifest["manifest_sha256"]


def test_partial_cache_resumes_only_missing(tmp_path, rows):
    provider = ScriptedProvider()
    storage = ExperimentStorage(tmp_path)
    _orch(provider, CacheManager(storage)).run(rows[:20], run_id="a")
    assert provider.total_calls == 80
    report = _orch(provider, CacheManager(storage)).run(rows, run_id="b")
    assert provider.total_calls == 200
    assert max(provider.calls.values()) == 1
    assert sum(c.cached for c in report.cells.values()) == 80


def test_errors_are_not_cached_and_are_retried_next_run(tmp_path, rows):
    def down(task, attempt):
        if task.row_id == "r1":
            raise ServerError("down")

    storage = ExperimentStorage(tmp_path)
    report = _orch(ScriptedProvider(down), CacheManager(storage), max_retries=0).run(rows)
    assert report.evaluation_report.errors == 4
    assert report.metric("ExactMatch").count == 196  # errors are not scored as wrong answers
    assert {f.row_id for f in report.failures} == {"r1"}
    healthy = ScriptedProvider()
    again = _orch(healthy, CacheManager(storage)).run(rows)
    assert healthy.total_calls == 4 and again.evaluation_report.errors == 0


def test_replay_mode_turns_misses_into_errors_without_requests(tmp_path, rows):
    provider = ScriptedProvider()
    storage = ExperimentStorage(tmp_path)
    _orch(provider, CacheManager(storage)).run(rows[:10])
    report = _orch(provider, CacheManager(storage, mode="replay")).run(rows[:12])
    assert provider.total_calls == 40
    misses = [r for r in report.records if r.error is not None]
    assert len(misses) == 8 and all(r.error.kind == "cache" for r in misses)
    assert "replay" in misses[0].error.message and misses[0].task.task_id in misses[0].error.message


def test_refresh_and_off_modes(tmp_path, rows):
    provider = ScriptedProvider()
    storage = ExperimentStorage(tmp_path)
    _orch(provider, CacheManager(storage)).run(rows[:5])
    _orch(provider, CacheManager(storage, mode="refresh")).run(rows[:5])
    assert provider.total_calls == 40
    _orch(provider, CacheManager(tmp_path / "other", mode="off")).run(rows[:5])
    assert provider.total_calls == 60 and not (tmp_path / "other").exists()


def test_unknown_cache_mode_is_rejected(tmp_path):
    with pytest.raises(ConfigurationError, match="sometimes"):
        CacheManager(ExperimentStorage(tmp_path), mode="sometimes")


def test_missing_reference_field_for_reference_metrics(tmp_path, rows):
    orch = _orch(
        ScriptedProvider(), CacheManager(enable_cache=False), plan=_plan(reference_field=None)
    )
    with pytest.raises(ConfigurationError, match="reference_field"):
        orch.run(rows)


def test_manifest_is_valid_and_has_no_secrets(tmp_path, rows):
    report = _orch(ScriptedProvider(), CacheManager(ExperimentStorage(tmp_path))).run(rows)
    manifest = report.manifest
    validate_manifest(manifest)
    text = str(manifest)
    assert "sk-canary-123" not in text and "***" in text
    assert manifest["totals"]["counts"]["total"] == 200
    assert len(manifest["cells"]) == 4
    assert manifest["datasets"][0]["rows"] == 50
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"sk-canary-123" not in path.read_bytes()


def test_cache_key_ignores_runtime_settings_but_not_sampling(rows):
    plan = _plan()
    tasks = list(plan.iter_tasks(plan.prepare(rows[:1])))
    keys = {generation_key(t) for t in tasks}
    assert len(keys) == 4  # 2 models x 2 temperatures
    other = GenerationPlan(
        [PromptTemplate("renamed", "{q}")],
        [ModelSpec("m0", "scripted", options={"api_key": "different"})],
        [SamplingConfig(temperature=0.0)],
    )
    same = next(other.iter_tasks(other.prepare(rows[:1])))
    assert generation_key(same) in keys  # template name and credentials are not in the key


def test_corrupted_entry_is_regenerated_with_a_warning(tmp_path, rows):
    provider = ScriptedProvider()
    storage = ExperimentStorage(tmp_path)
    _orch(provider, CacheManager(storage), plan=_plan(1, (0.0,))).run(rows[:3])
    key = next(k for k in storage.cache.iterkeys() if k.startswith("gen:"))
    raw = bytearray(storage.get_raw(key))
    raw[-3:] = b"XYZ"
    with sqlite3.connect(tmp_path / "cache.db") as db:
        db.execute("UPDATE Cache SET value = ? WHERE key = ?", (bytes(raw), key))
    storage.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = _orch(
            provider, CacheManager(ExperimentStorage(tmp_path)), plan=_plan(1, (0.0,))
        ).run(rows[:3])
    assert any(issubclass(w.category, CacheIntegrityWarning) for w in caught)
    assert provider.total_calls == 4 and report.evaluation_report.errors == 0


def test_run_record_is_saved(tmp_path, rows):
    cache = CacheManager(ExperimentStorage(tmp_path))
    report = _orch(ScriptedProvider(), cache).run(rows[:3], run_id="sweep-1")
    assert cache.load_run("sweep-1")["manifest_sha256"] == report.manifest["manifest_sha256"]


class _DroppingBackend(ExecutionBackend):
    """A broken user backend that silently loses every fifth result."""

    def map_unordered(self, fn, items, *, max_in_flight):
        for i, item in enumerate(items):
            if i % 5:
                yield fn(item)


def test_records_missing_from_a_backend_mark_the_report_incomplete(tmp_path, rows):
    cache = CacheManager(ExperimentStorage(tmp_path))
    plan = _plan(n_models=1, temps=(0.0,))
    report = _orch(ScriptedProvider(), cache, plan, execution_backend=_DroppingBackend()).run(rows)
    assert report.incomplete and report.missing == 10 and len(report.records) == 40
    (cell,) = report.manifest["cells"]
    assert cell["incomplete"] is True and cell["missing"] == 10


def test_a_complete_run_is_not_incomplete(tmp_path, rows):
    cache = CacheManager(ExperimentStorage(tmp_path))
    report = _orch(ScriptedProvider(), cache).run(rows)
    assert not report.incomplete and report.missing == 0 and len(report.records) == 200


def test_an_item_with_missing_records_fails_naming_the_count(pytester):
    pytester.makeconftest(
        """
        import pytest
        from pytest_themis.backends import ExecutionBackend

        class Dropping(ExecutionBackend):
            def map_unordered(self, fn, items, *, max_in_flight):
                for i, item in enumerate(items):
                    if i % 4:
                        yield fn(item)

        @pytest.fixture(scope="session")
        def themis_execution_backend():
            return Dropping()
        """
    )
    pytester.makepyfile(
        """
        import pytest

        ROWS = [{"id": str(i), "q": f"{i}+{i}", "a": str(2 * i)} for i in range(8)]

        @pytest.mark.themis(dataset=ROWS, prompts="{q}", models="fake:fake-oracle",
                            reference_field="a", metrics=["exact_match"])
        def test_cell(themis_report):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--themis-cache=off")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*incomplete run, 2 of 8 planned generation(s) produced no record*"]
    )
