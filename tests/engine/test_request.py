"""The request both doors build, the shared parsing rules and the deprecated evaluate() knobs."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from pytest_themis import evaluate
from pytest_themis.core.entities import SamplingConfig
from pytest_themis.errors import ConfigurationError
from pytest_themis.experiment.request import CacheSettings, parse_prompts, parse_samplings
from pytest_themis.generation.templates import PromptTemplate
from pytest_themis.storage import ExperimentStorage

ROWS = [{"id": "a", "q": "1+1", "gold": "2"}]


def _run(tmp_path: Path, **kwargs: Any) -> Any:
    return evaluate(
        dataset=ROWS,
        prompt="{q}",
        model="fake:fake-oracle",
        reference_field="gold",
        metrics=["exact_match"],
        **kwargs,
    ).evaluation_report


def test_prompt_naming_rule() -> None:
    assert [t.name for t in parse_prompts("{q}")] == ["prompt"]
    assert [t.name for t in parse_prompts(["{q}"])] == ["prompt"]
    assert [t.name for t in parse_prompts(["{q}", "Q: {q}"])] == ["prompt0", "prompt1"]
    renamed = parse_prompts({"mine": PromptTemplate("other", "{q}")})
    assert [t.name for t in renamed] == ["mine"]
    default = PromptTemplate("preset", "{q}")
    assert parse_prompts(None, default) == (default,)
    for bad in ({"n": 5}, [], {}, 3):
        with pytest.raises(ConfigurationError):
            parse_prompts(bad)


def test_sampling_dicts_override_the_base() -> None:
    base = SamplingConfig(temperature=0.0, max_tokens=1024, seed=3)
    out = parse_samplings([{"temperature": 0.5}, SamplingConfig()], base)
    assert out == (SamplingConfig(temperature=0.5, max_tokens=1024, seed=3), SamplingConfig())
    with pytest.raises(ConfigurationError, match="unknown key.*temprature"):
        parse_samplings({"temprature": 1.0})


def test_cache_settings_reject_an_unknown_mode_and_turn_off_without_storage() -> None:
    with pytest.raises(ConfigurationError, match="unknown cache mode 'sometimes'"):
        CacheSettings(mode="sometimes")
    assert CacheSettings(mode="use", storage=None).effective_mode == "off"


def test_storage_backend_is_a_deprecated_spelling_of_storage(tmp_path: Path) -> None:
    store = ExperimentStorage(tmp_path / "cache")
    with pytest.warns(DeprecationWarning, match=r"storage_backend=\) is deprecated; use storage="):
        first = _run(tmp_path, storage_backend=store)
    assert first.generated == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = _run(tmp_path, storage=store)
    assert again.cached == 1 and again.generated == 0


def test_resume_false_is_a_deprecated_spelling_of_cache_refresh(tmp_path: Path) -> None:
    storage = tmp_path / "cache"
    assert _run(tmp_path, storage=storage).generated == 1
    with pytest.warns(DeprecationWarning, match=r"resume=\) is deprecated; use cache='refresh'"):
        refreshed = _run(tmp_path, storage=storage, resume=False)
    assert refreshed.generated == 1 and refreshed.cached == 0


def test_an_execution_backend_can_be_named(tmp_path: Path) -> None:
    report = _run(tmp_path, storage=None, execution_backend="sequential")
    assert report.total == 1 and report.metrics["ExactMatch"].mean == 1.0
    with pytest.raises(ConfigurationError, match="unknown execution backend 'nope'.*sequential"):
        _run(tmp_path, storage=None, execution_backend="nope")
