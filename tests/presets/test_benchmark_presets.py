"""Benchmark presets: registry, shipped demo data, local copies and the offline Hub path."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_themis.core.entities import CellSpec, GenerationTask, ModelSpec
from pytest_themis.errors import ConfigurationError, DatasetError
from pytest_themis.generation.templates import PromptTemplate
from pytest_themis.presets import (
    BenchmarkPreset,
    get_benchmark_preset,
    list_benchmarks,
    register_benchmark,
    unregister_benchmark,
)
from pytest_themis.presets.builtin import canonical_number
from pytest_themis.providers.fake import FakeProvider

GSM8K_ROWS = [
    {"question": "Ann has 3 apples and buys 4 more. How many?", "answer": "3 + 4 = 7\n#### 7"},
    {"question": "A shop sells 1,200 pens a day. How many in 2 days?", "answer": "#### 2,400"},
    {"question": "Half of 5?", "answer": "5 / 2 = 2.50\n#### 2.50"},
]
MATH_ROWS = [
    {"problem": "Compute $1+1$.", "answer": "2", "unique_id": "test/algebra/1.json", "level": 1},
    {
        "problem": "Simplify $\\frac{2}{4}$.",
        "answer": "\\frac{1}{2}",
        "unique_id": "test/x/2.json",
        "level": 2,
    },
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach the network: the Hub is declared offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# ------------------------------------------------------------------------------- registry


def test_builtin_presets_are_listed() -> None:
    assert {"demo", "gsm8k", "math500"} <= set(list_benchmarks())
    assert list_benchmarks() == sorted(list_benchmarks())


def test_unknown_preset_lists_the_available_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        get_benchmark_preset("gsm9k")
    message = str(info.value)
    assert "'gsm9k'" in message
    assert all(name in message for name in ("demo", "gsm8k", "math500"))
    assert "register_benchmark" in message


def test_lookup_ignores_case_and_punctuation() -> None:
    assert get_benchmark_preset("GSM8K").name == "gsm8k"
    assert get_benchmark_preset("MATH-500").name == "math500"


def test_register_duplicate_needs_replace() -> None:
    custom = BenchmarkPreset(
        name="tiny-bench",
        description="test preset",
        source="example/tiny",
        config=None,
        split="test",
        revision=None,
        id_field="id",
        reference_field="gold",
        prompt=PromptTemplate(name="p", template="{q}"),
        primary_metric="ExactMatch",
    )
    register_benchmark(custom)
    try:
        assert get_benchmark_preset("tiny-bench") is custom
        with pytest.raises(ConfigurationError, match="already registered.*replace=True"):
            register_benchmark(custom)
        register_benchmark(custom, replace=True)
        assert "tiny-bench" in list_benchmarks()
    finally:
        unregister_benchmark("tiny-bench")
    assert "tiny-bench" not in list_benchmarks()


def test_preset_validation() -> None:
    prompt = PromptTemplate(name="p", template="{q}")
    common = dict(
        description="d",
        config=None,
        split="test",
        revision=None,
        id_field="id",
        reference_field="gold",
        prompt=prompt,
        primary_metric="ExactMatch",
    )
    with pytest.raises(ConfigurationError, match="name"):
        BenchmarkPreset(name="bad name/", source="x/y", **common)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="packaged_file"):
        BenchmarkPreset(name="nothing", source=None, **common)  # type: ignore[arg-type]


def test_builtin_preset_settings() -> None:
    demo, gsm8k, math500 = (get_benchmark_preset(n) for n in ("demo", "gsm8k", "math500"))
    assert demo.default_model == "fake:fake-math-llm"
    assert gsm8k.default_model is None and math500.default_model is None
    assert (gsm8k.source, gsm8k.config, gsm8k.split) == ("openai/gsm8k", "main", "test")
    assert (math500.source, math500.split, math500.id_field) == (
        "HuggingFaceH4/MATH-500",
        "test",
        "unique_id",
    )
    for preset in (gsm8k, math500):
        assert preset.revision is not None and len(preset.revision) == 40
    assert demo.primary_metric == gsm8k.primary_metric == "NumericMatch"
    assert math500.primary_metric == "MathVerifyAccuracy"
    assert all(p.sampling.temperature == 0.0 for p in (demo, gsm8k, math500))
    rendered = math500.prompt.render({"problem": "Compute $x$."})
    assert "\\boxed{}" in rendered and rendered.endswith("Compute $x$.")
    assert "####" in demo.prompt.render({"question": "Q?"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" 1,234 ", "1234"),
        ("$18.00", "18"),
        ("-3", "-3"),
        ("2.50", "2.5"),
        ("7.", "7"),
        ("x", None),
        ("", None),
    ],
)
def test_canonical_number(text: str, expected: str | None) -> None:
    assert canonical_number(text) == expected


# ------------------------------------------------------------------------------- demo


def test_demo_loads_fifty_rows_without_datasets(monkeypatch: pytest.MonkeyPatch) -> None:
    """JSON copies are read with the standard library: no seconds-long ``datasets`` import."""
    import datasets

    calls: list[str] = []
    real = datasets.load_dataset

    def spy(path: str, *args: object, **kwargs: object) -> object:
        calls.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", spy)
    rows = get_benchmark_preset("demo").load()
    assert calls == []
    assert len(rows) == 50
    assert len({r["id"] for r in rows}) == 50
    assert all(set(r) == {"id", "question", "answer"} for r in rows)
    assert all(type(r["answer"]) is int for r in rows)


def test_demo_limit() -> None:
    demo = get_benchmark_preset("demo")
    rows = demo.load()
    assert demo.load(limit=5) == rows[:5]
    assert demo.load(limit=0) == []
    with pytest.raises(ConfigurationError, match="limit must be >= 0"):
        demo.load(limit=-1)
    with pytest.raises(ConfigurationError, match="limit"):
        demo.load(limit="3")  # type: ignore[arg-type]


def test_fake_math_llm_scores_about_point_eight_with_the_preset_scoring() -> None:
    demo = get_benchmark_preset("demo")
    extractor = demo.extractor()
    (metric,) = demo.metrics()
    assert type(extractor).__name__ == "GSM8KExtractor"
    assert type(metric).__name__ == "NumericMatch"
    provider = FakeProvider()
    spec = ModelSpec(identifier="fake-math-llm", provider="fake")
    cell = CellSpec(model=spec, template_name=demo.prompt.name, sampling=demo.sampling)
    scores = []
    for row in demo.load():
        messages = demo.prompt.render_messages(row, row["id"])
        task = GenerationTask(cell=cell, row_id=row["id"], sample_index=0, messages=messages)
        prediction = extractor.extract(provider.generate(task).text)
        scores.append(metric.compute(prediction, row[demo.reference_field]).value)
    assert 0.7 <= sum(scores) / len(scores) <= 0.9


def test_preset_pipeline_is_built_from_its_parts() -> None:
    pipeline = get_benchmark_preset("gsm8k").pipeline()
    assert type(pipeline).__name__ == "EvaluationPipeline"


def test_math500_scoring_parts() -> None:
    math500 = get_benchmark_preset("math500")
    assert type(math500.extractor()).__name__ == "MathVerifyExtractor"
    assert [type(m).__name__ for m in math500.metrics()] == ["MathVerifyAccuracy"]


def test_demo_describe_source_fingerprints_the_shipped_file() -> None:
    info = get_benchmark_preset("demo").describe_source()
    path = Path(info["local_path"])
    assert path.name == "demo.jsonl"
    assert info["fingerprint"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info["source"] is None and info["split"] == "train"


def test_demo_falls_back_to_shipped_copy_when_data_dir_lacks_it(tmp_path: Path) -> None:
    assert len(get_benchmark_preset("demo").load(data_dir=tmp_path)) == 50


# ------------------------------------------------------------------------------- local copies


def test_gsm8k_from_a_data_dir_adds_gold_and_positional_ids(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K_ROWS)
    rows = get_benchmark_preset("gsm8k").load(data_dir=tmp_path)
    assert [r["gold"] for r in rows] == ["7", "2400", "2.5"]
    assert [r["id"] for r in rows] == ["0", "1", "2"]
    assert rows[0]["question"] == GSM8K_ROWS[0]["question"]


def test_gsm8k_keeps_ids_that_are_present(tmp_path: Path) -> None:
    rows = [dict(r, id=f"q{i}") for i, r in enumerate(GSM8K_ROWS)]
    write_jsonl(tmp_path / "gsm8k.jsonl", rows)
    assert [r["id"] for r in get_benchmark_preset("gsm8k").load(data_dir=tmp_path)] == [
        "q0",
        "q1",
        "q2",
    ]


def test_gsm8k_bad_gold_names_the_row(tmp_path: Path) -> None:
    rows = GSM8K_ROWS + [{"question": "Broken?", "answer": "no final marker here"}]
    write_jsonl(tmp_path / "gsm8k.jsonl", rows)
    with pytest.raises(DatasetError, match=r"row 3 .*gsm8k\.jsonl.*'#### <number>'"):
        get_benchmark_preset("gsm8k").load(data_dir=tmp_path, limit=1)


def test_gsm8k_with_foreign_field_names_says_which_fields_are_expected(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "gsm8k.jsonl", [{"problem": "1+1", "solution": "#### 2"}])
    with pytest.raises(DatasetError, match=r"row 0.*lacks field 'question'.*question, answer"):
        get_benchmark_preset("gsm8k").load(data_dir=tmp_path)


def test_math500_from_a_data_dir_uses_unique_id(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "math500.jsonl", MATH_ROWS)
    math500 = get_benchmark_preset("math500")
    rows = math500.load(data_dir=tmp_path)
    assert [r[math500.id_field] for r in rows] == ["test/algebra/1.json", "test/x/2.json"]
    assert [r[math500.reference_field] for r in rows] == ["2", "\\frac{1}{2}"]
    assert math500.load(data_dir=tmp_path, limit=1) == rows[:1]


def test_math500_parquet_copy(tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_list(MATH_ROWS).to_parquet(str(tmp_path / "math500.parquet"))
    assert len(get_benchmark_preset("math500").load(data_dir=tmp_path)) == 2


def test_data_dir_without_the_file_names_dir_and_expected_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        get_benchmark_preset("gsm8k").load(data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "gsm8k.jsonl" in message and "gsm8k.parquet" in message


def test_missing_data_dir_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        get_benchmark_preset("gsm8k").load(data_dir=tmp_path / "absent")


def test_env_var_points_at_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K_ROWS)
    monkeypatch.setenv("THEMIS_DATA_DIR", str(tmp_path))
    gsm8k = get_benchmark_preset("gsm8k")
    assert len(gsm8k.load()) == 3
    info = gsm8k.describe_source()
    assert info["local_path"] == str(tmp_path / "gsm8k.jsonl")
    # A local copy is recorded as a file (path + SHA-256), not as the pinned Hub revision.
    assert info["kind"] == "local_file" and info["source"] == info["local_path"]
    assert "revision" not in info and "config" not in info
    assert len(info["fingerprint"]) == 64 == len(info["file_sha256"])


def test_truncated_local_copy_names_file_and_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K_ROWS)
    path.write_text(path.read_text(encoding="utf-8")[:-10], encoding="utf-8")
    with pytest.raises(DatasetError, match=r"gsm8k\.jsonl.*line 3"):
        get_benchmark_preset("gsm8k").load(data_dir=tmp_path)


# ------------------------------------------------------------------------------- the Hub


def assert_local_copy_hint(message: str, name: str) -> None:
    for needle in ("--themis-data-dir", "THEMIS_DATA_DIR", "data_dir=", f"{name}.jsonl"):
        assert needle in message, needle


def test_hub_describe_source_has_no_local_path() -> None:
    info = get_benchmark_preset("math500").describe_source()
    assert info["local_path"] is None and info["fingerprint"] is None
    assert info["source"] == "HuggingFaceH4/MATH-500"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", ["gsm8k", "math500"])
def test_offline_hub_fails_fast_with_local_copy_instructions(
    name: str, offline_hub: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datasets

    # ``datasets`` was imported online in this process, so it would still try the network.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    started = time.perf_counter()
    with pytest.raises(DatasetError) as info:
        get_benchmark_preset(name).load()
    assert time.perf_counter() - started < 5
    message = str(info.value)
    assert "HF_HUB_OFFLINE" in message
    assert_local_copy_hint(message, name)
    assert "question" in message if name == "gsm8k" else "problem" in message


@pytest.mark.timeout(30)
def test_unreachable_hub_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    with socket.socket() as sock:  # a local port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    started = time.perf_counter()
    with pytest.raises(DatasetError) as info:
        get_benchmark_preset("gsm8k").load()
    assert time.perf_counter() - started < 5
    assert "unreachable" in str(info.value)
    assert_local_copy_hint(str(info.value), "gsm8k")


@pytest.mark.timeout(60)
def test_offline_from_the_start_uses_only_the_cache(tmp_path: Path) -> None:
    """With HF_HUB_OFFLINE set before ``datasets`` is imported, only cached copies are tried."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = (
        "import time\n"
        "from pytest_themis.errors import DatasetError\n"
        "from pytest_themis.presets import get_benchmark_preset\n"
        "import datasets\n"
        "started = time.perf_counter()\n"
        "try:\n"
        "    get_benchmark_preset('gsm8k').load()\n"
        "except DatasetError as exc:\n"
        "    print(round(time.perf_counter() - started, 3)); print(exc)\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HF_", "THEMIS_"))},
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "HF_ENDPOINT": f"http://127.0.0.1:{port}",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=50
    )
    assert out.returncode == 0, out.stderr
    seconds, message = out.stdout.split("\n", 1)
    assert float(seconds) < 5
    assert "only cached copies" in message
    assert_local_copy_hint(message, "gsm8k")


def test_scoring_parts_by_registry_name_callable_or_unknown() -> None:
    prompt = PromptTemplate(name="p", template="{q}")
    common = dict(
        description="d",
        source="example/x",
        config=None,
        split="test",
        revision=None,
        id_field="id",
        reference_field="gold",
        prompt=prompt,
        primary_metric="exact_match",
    )
    by_name = BenchmarkPreset(name="by-name", extractor_factory="gsm8k", **common)  # type: ignore[arg-type]
    assert type(by_name.extractor()).__name__ == "GSM8KExtractor"
    assert [type(m).__name__ for m in by_name.metrics()] == ["ExactMatch"]
    marker = object()
    by_callable = BenchmarkPreset(name="by-fn", extractor_factory=lambda: marker, **common)  # type: ignore[arg-type]
    assert by_callable.extractor() is marker
    unknown = BenchmarkPreset(name="unknown", extractor_factory="NoSuchExtractor", **common)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="'unknown'.*extractor 'NoSuchExtractor'"):
        unknown.extractor()
