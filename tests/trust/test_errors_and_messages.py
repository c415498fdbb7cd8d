"""Items 5, 7 and 9: credentials, fail-fast, and the smaller messages."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from support.services import free_port

from pytest_themis import evaluate
from pytest_themis.errors import AuthenticationError, ConfigurationError
from pytest_themis.generation.failfast import FailFastError
from pytest_themis.testing import FaultPlan, OpenAIServer

ROWS = [{"id": f"r{i}", "q": f"{i}+{i}", "a": str(2 * i)} for i in range(40)]


def _run(model: str, rows: list[dict[str, Any]] = ROWS, **options: Any) -> Any:
    return evaluate(
        dataset=rows, model=model, prompt="{q}", reference_field="a", metrics=["exact_match"],
        **options,
    )  # fmt: skip


def test_missing_key_is_an_authentication_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    report = _run("openai/gpt-4o-mini", ROWS[:2], storage=None, max_retries=3)
    assert len(report.failures) == 2
    for record in report.failures:
        error = record.generation.error
        assert error is not None and error.type == "AuthenticationError"
        assert "OPENAI_API_KEY" in error.message and "no API key was found" in error.message
        assert record.generation.attempts == 1  # not retried


def test_rejected_key_is_not_retried_and_names_the_variable(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        server.set_plan(FaultPlan(status_for_model={"fake-chat": 401}))
        report = _run(
            "openai/fake-chat", ROWS[:3], api_base=server.url, api_key="sk-wrong-key-123",
            storage=None, max_retries=3,
        )  # fmt: skip
        assert server.stats.request_count == 3  # one attempt per row
    error = report.failures[0].generation.error
    assert error is not None and error.type == "AuthenticationError"
    assert "rejected (HTTP 401)" in error.message and "OPENAI_API_KEY" in error.message
    assert "sk-wrong-key-123" not in error.message


def test_provider_typo_suggests_the_closest_provider_without_banners(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(ConfigurationError, match=r"did you mean 'openai/gpt-4o-mini'\?"):
        _run("opneai/gpt-4o-mini", storage=None)
    out, err = capfd.readouterr()
    for banner in ("Provider List", "Give Feedback", "LiteLLM.Info"):
        assert banner not in out + err


def test_unreachable_endpoint_fails_fast(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    started = time.perf_counter()
    report = _run(
        "openai/fake-chat", api_base=dead, storage=tmp_path / "cache", max_retries=3,
        max_parallel=4,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    errors = [r.generation.error for r in report.failures]
    assert len(errors) == len(ROWS)
    skipped = [e for e in errors if e is not None and e.type == "FailFastError"]
    assert len(skipped) >= len(ROWS) - 12  # only the first few rows were attempted
    assert skipped and "all failed to connect" in skipped[0].message
    assert "could not connect" in skipped[0].message  # names the cause
    assert elapsed < 20, elapsed  # 40 rows x 4 attempts with backoff would take far longer


def test_fail_fast_keeps_finished_records_and_never_trips_after_a_success() -> None:
    from pytest_themis.core.entities import CellSpec, GenerationTask, ModelSpec, SamplingConfig
    from pytest_themis.errors import ProviderConnectionError
    from pytest_themis.generation.executors import TaskExecutor
    from pytest_themis.generation.failfast import FailFastExecutor

    class Flaky(TaskExecutor):
        def __init__(self, fail: bool) -> None:
            self.fail, self.calls = fail, 0

        def execute(self, task: GenerationTask, *, timeout: float | None = None) -> Any:
            self.calls += 1
            if self.fail:
                raise ProviderConnectionError("connection refused")
            from pytest_themis.core.entities import ProviderResponse

            return ProviderResponse(text="ok")

    cell = CellSpec(ModelSpec("m", "scripted"), "p", SamplingConfig())
    task = GenerationTask(cell, "r", 0, ({"role": "user", "content": "x"},))
    inner = Flaky(fail=False)
    wrapped = FailFastExecutor(inner, threshold=3)
    wrapped.execute(task)  # one success
    inner.fail = True
    for _ in range(10):
        with pytest.raises(ProviderConnectionError):
            wrapped.execute(task)
    assert inner.calls == 11  # an endpoint that answered once is never cut off
    fresh = FailFastExecutor(Flaky(fail=True), threshold=3)
    for _ in range(3):
        with pytest.raises(ProviderConnectionError):
            fresh.execute(task)
    with pytest.raises(FailFastError, match="connection refused"):
        fresh.execute(task)
    assert isinstance(FailFastError("x"), AuthenticationError.__mro__[1])  # permanent


def test_unusable_cache_folder_in_evaluate_is_one_configuration_error(
    tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    from pytest_themis.errors import CacheFolderError

    (tmp_path / "afile").write_text("")
    with pytest.raises(CacheFolderError, match=r"cannot use the cache folder .*afile") as info:
        _run("fake:fake-math-llm", storage=tmp_path / "afile" / "cache")
    assert "\n" not in str(info.value) and isinstance(info.value, ConfigurationError)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "cache.db").write_bytes(b"\x00garbage" * 200)
    with pytest.raises(CacheFolderError, match=r"cache\.db is damaged.*move it aside"):
        _run("fake:fake-math-llm", storage=broken)
    assert not [w for w in recwarn if "regenerated" in str(w.message)]


def test_declared_version_is_an_evaluate_option(tmp_path: Path) -> None:
    def app(prompt: str) -> str:
        return "0"

    first = _run(app, ROWS[:3], storage=tmp_path, version="v1")
    assert not any(r.generation.cached for r in first.records)
    assert all(
        r.generation.cached for r in _run(app, ROWS[:3], storage=tmp_path, version="v1").records
    )
    assert not any(
        r.generation.cached for r in _run(app, ROWS[:3], storage=tmp_path, version="v2").records
    )


def test_validation_names_the_gate_metric_and_the_fix() -> None:
    from pytest_themis._pytest.options import FailUnder
    from pytest_themis.evaluation.metrics.exact_match import ExactMatch
    from pytest_themis.evaluation.metrics.response_length import ResponseLength
    from pytest_themis.experiment.validation import check_gates

    metrics = [ExactMatch(), ResponseLength()]
    with pytest.raises(ConfigurationError, match=r"did you mean 'ExactMatch'\?"):
        check_gates([FailUnder("ExactMatc", 0.5)], metrics, "ExactMatch")
    with pytest.raises(ConfigurationError, match=r"85: ExactMatch scores lie in \[0, 1\].*0\.85"):
        check_gates([FailUnder(None, 85.0)], metrics, "ExactMatch")
    with pytest.raises(ConfigurationError, match=r"choose a threshold inside that range"):
        check_gates([FailUnder("ExactMatch", -0.5)], metrics, "ExactMatch")
    check_gates([FailUnder("ResponseLength", 300.0), FailUnder(None, 0.9)], metrics, "ExactMatch")
    check_gates([FailUnder("pass@5", 0.9)], metrics, "ExactMatch")  # an aggregate over epochs
    with pytest.raises(ConfigurationError, match=r"pass@5 scores lie in \[0, 1\]"):
        check_gates([FailUnder("pass@5", 90.0)], metrics, "ExactMatch")
