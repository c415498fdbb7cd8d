"""evaluate(): Level 1/2 behaviour and the errors it raises for bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_themis import evaluate
from pytest_themis.api import parse_model
from pytest_themis.errors import ConfigurationError, DatasetError, TemplateError, ThemisError

ROWS = [{"id": "a", "q": "2+2", "gold": "4"}, {"id": "b", "q": "7*6", "gold": "42"}]


def test_custom_rows_with_a_python_model(tmp_path):
    report = evaluate(
        dataset=ROWS,
        model=lambda prompt: {"2+2": "4"}.get(prompt, "?"),
        prompt="{q}",
        reference_field="gold",
        metrics=["exact_match"],
        storage=tmp_path,
    )
    assert report.metric("exact_match").mean == 0.5 and report.metric("ExactMatch").count == 2
    assert len(report.records) == 2 and not report.failures


def test_rerun_is_served_from_the_default_cache_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    calls = []

    def model(prompt: str) -> str:
        calls.append(prompt)
        return "4"

    for _ in range(2):
        evaluate(
            dataset=ROWS, model=model, prompt="{q}", reference_field="gold", metrics=["exact_match"]
        )
    assert len(calls) == 2 and (tmp_path / ".themis_cache").is_dir()


def test_demo_preset_with_its_default_model(tmp_path):
    report = evaluate("demo", storage=tmp_path, limit=10)
    assert report.metric("NumericMatch").count == 10
    assert report.manifest["datasets"][0]["name"] == "demo"


@pytest.mark.parametrize(
    "kwargs, error, fragments",
    [
        (
            {
                "dataset": ROWS,
                "prompt": "{q}",
                "metrics": ["exact_match"],
                "reference_field": "gold",
                "model": "fake:x",
                "temprature": 0.3,
            },
            ConfigurationError,
            ["temprature", "fake"],
        ),
        (
            {
                "dataset": ROWS,
                "prompt": "{question}",
                "metrics": ["exact_match"],
                "reference_field": "gold",
                "model": "fake:x",
            },
            TemplateError,
            ["question", "'a'"],
        ),
        (
            {
                "dataset": ROWS,
                "prompt": "{q}",
                "metrics": ["exact_match"],
                "reference_field": "answer",
                "model": "fake:x",
            },
            DatasetError,
            ["answer", "'a'"],
        ),
        (
            {
                "dataset": ROWS + [dict(ROWS[0])],
                "prompt": "{q}",
                "metrics": ["exact_match"],
                "reference_field": "gold",
                "model": "fake:x",
            },
            DatasetError,
            ["duplicate id 'a'"],
        ),
        (
            {"dataset": [], "prompt": "{q}", "metrics": ["exact_match"], "model": "fake:x"},
            DatasetError,
            ["empty"],
        ),
        (
            {
                "dataset": ROWS,
                "prompt": "{q}",
                "metrics": ["exakt_match"],
                "reference_field": "gold",
                "model": "fake:x",
            },
            ConfigurationError,
            ["exakt_match", "exact_match"],
        ),
        (
            {"dataset": ROWS, "prompt": "{q}", "metrics": ["exact_match"], "model": "fake:x"},
            ConfigurationError,
            ["reference_field"],
        ),
        (
            {
                "dataset": ROWS,
                "prompt": "{q}",
                "metrics": ["exact_match"],
                "reference_field": "gold",
                "model": "fake:x",
                "limit": -1,
            },
            ConfigurationError,
            ["limit"],
        ),
        (
            {
                "dataset": ROWS,
                "prompt": "{q}",
                "metrics": ["exact_match"],
                "reference_field": "gold",
                "model": "nosuchprovider/model",
            },
            ConfigurationError,
            ["nosuchprovider/model"],
        ),
    ],
)
def test_bad_input_names_the_offender(tmp_path, kwargs, error, fragments):
    with pytest.raises(error) as info:
        evaluate(storage=tmp_path, **kwargs)
    assert isinstance(info.value, ThemisError)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_unknown_preset_lists_the_available_ones(tmp_path):
    with pytest.raises(ConfigurationError) as info:
        evaluate("gsm9k", model="fake:x", storage=tmp_path)
    message = str(info.value)
    assert "gsm9k" in message and "gsm8k" in message and "demo" in message


def test_parse_model_routes_by_prefix():
    assert parse_model("fake:tiny").provider == "fake"
    assert parse_model("openai/gpt-4o-mini").provider == "litellm"
    assert parse_model("litellm:openai/gpt-4o-mini").identifier == "openai/gpt-4o-mini"
    spec = parse_model(len)
    assert spec.provider == "python" and "fn" in spec.options
    assert "<callable" in str(spec.to_dict()["options"]["fn"])


def test_import_is_light():
    code = (
        "import sys, pytest_themis, pytest_themis.plugin;"
        "heavy = [m for m in ('litellm', 'datasets', 'sympy', 'math_verify') if m in sys.modules];"
        "print(heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
