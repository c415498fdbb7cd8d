"""Items 1 and 2: a callable's code and every output-affecting provider option are in the key."""

from __future__ import annotations

import functools
import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_themis import evaluate
from pytest_themis.core.entities import CellSpec, GenerationTask, ModelSpec, SamplingConfig
from pytest_themis.experiment.cache_manager import generation_key
from pytest_themis.experiment.fingerprint import callable_fingerprint

ROWS = [{"id": f"r{i}", "q": f"{i}+{i}", "a": str(2 * i)} for i in range(1, 6)]
APP_V1 = "def app(prompt):\n    return str(eval(prompt))\n"
APP_V2 = "def app(prompt):\n    return '0'\n"


def _key(model: ModelSpec) -> str:
    cell = CellSpec(model, "p", SamplingConfig())
    return generation_key(GenerationTask(cell, "r1", 0, ({"role": "user", "content": "2+2"},)))


def _load(tmp_path: Path, name: str, source: str) -> Any:
    (tmp_path / f"{name}.py").write_text(source)
    if str(tmp_path) not in sys.path:
        sys.path.insert(0, str(tmp_path))
    sys.modules.pop(name, None)
    importlib.invalidate_caches()
    return importlib.import_module(name)


def _run(model: Any, **options: Any) -> Any:
    return evaluate(
        dataset=ROWS, model=model, prompt="{q}", reference_field="a", metrics=["exact_match"],
        **options,
    )  # fmt: skip


def test_changing_a_callables_code_invalidates_its_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _run(_load(tmp_path, "userapp", APP_V1).app, storage=cache)
    assert first.evaluation_report.metrics["ExactMatch"].mean == 1.0
    again = _run(_load(tmp_path, "userapp", APP_V1).app, storage=cache)  # same code, fresh import
    assert all(r.generation.cached for r in again.records)
    changed = _run(_load(tmp_path, "userapp", APP_V2).app, storage=cache)
    assert not any(r.generation.cached for r in changed.records)
    assert changed.evaluation_report.metrics["ExactMatch"].mean == 0.0


def test_editing_a_helper_in_the_same_module_changes_the_fingerprint(tmp_path: Path) -> None:
    helper = "def helper(p):\n    return p\n\ndef app(prompt):\n    return helper(prompt)\n"
    one = callable_fingerprint(_load(tmp_path, "helperapp", helper).app)
    two = callable_fingerprint(_load(tmp_path, "helperapp", helper.replace("p\n", "p * 2\n")).app)
    assert one.startswith("code:") and one != two


def test_closure_values_partial_arguments_and_defaults_are_fingerprinted() -> None:
    def make(suffix: str) -> Any:
        def app(prompt: str) -> str:
            return prompt + suffix

        return app

    def base(prompt: str, style: str = "a") -> str:
        return prompt + style

    assert callable_fingerprint(make("x")) == callable_fingerprint(make("x"))
    assert callable_fingerprint(make("x")) != callable_fingerprint(make("y"))
    assert callable_fingerprint(functools.partial(base, style="a")) != callable_fingerprint(
        functools.partial(base, style="b")
    )

    class App:
        def __init__(self, k: int) -> None:
            self.k = k

        def __call__(self, prompt: str) -> str:
            return prompt * self.k

    assert callable_fingerprint(App(1)) != callable_fingerprint(App(2))


def test_declared_version_is_the_escape_hatch(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    v1 = _load(tmp_path, "verapp", APP_V1).app
    v1.themis_version = "2024-01"
    _run(v1, storage=cache)
    v2 = _load(tmp_path, "verapp", APP_V2).app
    v2.themis_version = "2024-01"  # the user says: same behaviour, keep the answers
    assert all(r.generation.cached for r in _run(v2, storage=cache).records)
    v2.themis_version = "2024-02"
    assert not any(r.generation.cached for r in _run(v2, storage=cache).records)
    # The ModelSpec option wins over the attribute.
    spec = ModelSpec("verapp.app", "python", options={"fn": v2, "version": "2024-01"})
    assert all(r.generation.cached for r in _run(spec, storage=cache).records)


def test_fake_provider_options_are_in_the_key(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    honest = evaluate("demo", model="fake:fake-math-llm", wrong_rate=0.0, storage=cache)
    broken = evaluate("demo", model="fake:fake-math-llm", wrong_rate=1.0, storage=cache)
    assert honest.evaluation_report.metrics["NumericMatch"].mean == 1.0
    assert broken.evaluation_report.metrics["NumericMatch"].mean == 0.0
    assert not any(r.generation.cached for r in broken.records)
    # Latency and injected failures never change an answer: the same entries are reused.
    slow = evaluate("demo", model="fake:fake-math-llm", wrong_rate=0.0, latency=0.0, storage=cache)
    assert all(r.generation.cached for r in slow.records)


@pytest.mark.parametrize(
    "option",
    [
        {"extra_body": {"frequency_penalty": 1.5}},
        {"extra_body": {"reasoning_effort": "high"}},
        {"reasoning_effort": "high"},
        {"api_version": "2024-06-01"},
        {"some_future_option": 1},  # unknown options are assumed to matter
    ],
)
def test_output_affecting_options_change_the_key(option: dict[str, Any]) -> None:
    assert _key(ModelSpec("openai/m", options=option)) != _key(ModelSpec("openai/m"))


@pytest.mark.parametrize(
    "option",
    [
        {"api_key": "sk-one"},
        {"timeout": 5},
        {"max_retries": 9},
        {"extra_headers": {"Authorization": "Bearer x"}},
        {"organization": "org-1"},
    ],
)
def test_transport_and_credentials_stay_out_of_the_key(option: dict[str, Any]) -> None:
    assert _key(ModelSpec("openai/m", options=option)) == _key(ModelSpec("openai/m"))


def test_extra_body_through_litellm_is_sent_not_replayed(tmp_path: Path) -> None:
    from pytest_themis.testing import OpenAIServer

    cache = tmp_path / "cache"
    with OpenAIServer() as server:
        common = {"api_base": server.url, "storage": cache}
        _run("openai/fake-chat", **common)
        assert server.stats.request_count == len(ROWS)
        _run("openai/fake-chat", api_key="sk-other-key", timeout=30, **common)
        assert server.stats.request_count == len(ROWS)  # credentials/timeouts: cached
        _run("openai/fake-chat", extra_body={"frequency_penalty": 1.5}, **common)
        assert server.stats.request_count == 2 * len(ROWS)


def test_state_in_mutable_closures_does_not_change_the_fingerprint() -> None:
    calls: list[str] = []

    def app(prompt: str) -> str:
        calls.append(prompt)
        return prompt

    before = callable_fingerprint(app)
    app("2+2")
    assert calls and callable_fingerprint(app) == before


APP_TEST = """
import pytest

ROWS = [{"id": f"r{i}", "q": f"{i}+{i}", "a": str(2 * i)} for i in range(1, 6)]


def my_app(prompt):
    return ANSWER


@pytest.mark.themis(dataset=ROWS, prompts="{q}", models=[my_app], reference_field="a",
                    metrics=["exact_match"])
def test_app(themis_report):
    print("SCORE", themis_report.metrics["ExactMatch"].mean, "CACHED", themis_report.cached)
"""


def test_editing_a_marker_callable_reruns_it_through_pytest(door: pytest.Pytester) -> None:
    args = ["-p", "no:cacheprovider", "-s", f"--themis-cache-dir={door.path / 'cache'}"]
    door.makepyfile(test_app=APP_TEST.replace("ANSWER", "str(eval(prompt))"))
    door.runpytest(*args).stdout.fnmatch_lines(["*SCORE 1.0 CACHED 0*"])
    door.runpytest(*args).stdout.fnmatch_lines(["*SCORE 1.0 CACHED 5*"])
    door.makepyfile(test_app=APP_TEST.replace("ANSWER", "'0'"))
    door.runpytest(*args).stdout.fnmatch_lines(["*SCORE 0.0 CACHED 0*"])
