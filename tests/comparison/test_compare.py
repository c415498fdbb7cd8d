"""Comparing runs through the Python door: per-sample files, baselines, verdicts, epochs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_themis import evaluate
from pytest_themis.comparison import Comparison, compare_runs
from pytest_themis.comparison.baseline import load_baseline, report_run_data
from pytest_themis.comparison.samples import load_stored_run, read_jsonl, store_run
from pytest_themis.core.entities import (
    CellSpec,
    EvaluationRecord,
    GenerationRecord,
    GenerationTask,
    MetricScore,
    ModelSpec,
    SamplingConfig,
)
from pytest_themis.core.reports import EvaluationReport
from pytest_themis.errors import ConfigurationError
from pytest_themis.experiment.manifest import manifest_hash

ROWS = [{"id": f"r{i}", "q": f"{i} + {3 * i}", "answer": str(4 * i)} for i in range(200)]


def _run(tmp_path: Path, wrong_rate: float, rows: list[dict[str, Any]] = ROWS, **kw: Any) -> Any:
    # a store per run: the fake provider's wrong_rate must not be answered from another's cache
    store = tmp_path / f"store-{wrong_rate}-{len(rows)}-{kw.get('prompt', '')[:3]}"
    kw.setdefault("prompt", "{q}")
    return evaluate(
        dataset=rows,
        model="fake:m",
        reference_field="answer",
        metrics=["exact_match"],
        storage=store,
        wrong_rate=wrong_rate,
        **kw,
    )


def test_regression_is_detected_with_exact_mcnemar(tmp_path: Path) -> None:
    base, new = _run(tmp_path, 0.1), _run(tmp_path, 0.4)
    comparison = new.compare(base)
    assert isinstance(comparison, Comparison)
    cell = comparison.cells[0]
    m = cell.metric("exact_match")
    assert m.method == "mcnemar" and m.pairs == 200 and cell.paired == 200
    # the fake provider's wrong answers are nested: raising wrong_rate only flips right -> wrong
    assert m.better == 0 and m.worse > 30
    assert m.difference == pytest.approx(
        new.metric("ExactMatch").mean - base.metric("ExactMatch").mean
    )
    assert m.ci_high < 0 and m.p_adjusted < 1e-6
    assert cell.verdict == comparison.verdict == "regressed"
    with pytest.raises(AssertionError, match="significant drop"):
        comparison.assert_not_worse("ExactMatch", margin=0.02)
    # the other way round it is an improvement
    assert base.compare(new).verdict == "improved"


def test_identical_runs_are_unchanged_and_pass_both_gates(tmp_path: Path) -> None:
    base, new = _run(tmp_path, 0.2), _run(tmp_path / "again", 0.2)
    comparison = new.compare(base)
    assert comparison.verdict == "unchanged"
    comparison.assert_not_worse("exact_match")
    comparison.assert_not_worse("exact_match", margin=0.05, strict=True)
    with pytest.raises(AssertionError, match="non-inferiority not shown"):
        comparison.assert_not_worse("exact_match", margin=0.0, strict=True)


def test_small_run_is_inconclusive_with_a_detectable_difference_warning(tmp_path: Path) -> None:
    rows = ROWS[:30]
    comparison = _run(tmp_path, 0.3, rows).compare(_run(tmp_path, 0.2, rows), margin=0.02)
    m = comparison.cells[0].metrics["ExactMatch"]
    assert m.worse and m.verdict == "inconclusive"
    assert m.warning is not None and "cannot detect a 2-point drop with 30 rows" in m.warning
    needed = int(m.warning.rsplit("~", 1)[1].split()[0])
    assert needed > 30
    assert comparison.warnings and "ExactMatch" in comparison.warnings[0]


def test_unpaired_rows_and_changed_template_are_reported(tmp_path: Path) -> None:
    base = _run(tmp_path, 0.2)
    new = _run(tmp_path, 0.2, ROWS[:150] + [{"id": "extra", "q": "1 + 1", "answer": "2"}])
    with pytest.raises(ConfigurationError, match="another dataset"):
        new.compare(base)
    # same rows, other prompt text: the template hash change is reported, cells still match
    reworded = _run(tmp_path, 0.2, prompt="{q} ")
    cell = reworded.compare(base).cells[0]
    assert any(c.startswith("template changed") for c in cell.changes)
    # unpaired rows are counted, not paired: drop rows from the baseline's samples
    base_data = report_run_data(base)
    base_data.samples = [s for s in base_data.samples if s["row_id"] not in ("r0", "r1")]
    cmp = compare_runs(report_run_data(reworded), base_data)
    assert (cmp.cells[0].paired, cmp.cells[0].only_new, cmp.cells[0].only_baseline) == (198, 2, 0)


def test_explicit_mapping_pairs_different_models(tmp_path: Path) -> None:
    a = evaluate(dataset=ROWS, model="fake:a", prompt="{q}", reference_field="answer",
                 metrics=["exact_match"], storage=tmp_path / "a", wrong_rate=0.2)  # fmt: skip
    b = evaluate(dataset=ROWS, model="fake:b", prompt="{q}", reference_field="answer",
                 metrics=["exact_match"], storage=tmp_path / "b", wrong_rate=0.2)  # fmt: skip
    assert b.compare(a).cells == []  # different models do not match by themselves
    mapped = b.compare(a, mapping={"b-prompt-t0": "a-prompt-t0"})
    assert [c.baseline_cell_id for c in mapped.cells] == ["a-prompt-t0"]
    with pytest.raises(ConfigurationError, match="no cell 'nope'"):
        b.compare(a, mapping={"b-prompt-t0": "nope"})


def test_to_jsonl_fields_hash_mode_and_manifest_reference(tmp_path: Path) -> None:
    report = _run(tmp_path, 0.2, ROWS[:5])
    path = report.to_jsonl(tmp_path / "out" / "samples.jsonl", log_prompts="hash")
    rows, digest = read_jsonl(path)
    assert len(rows) == 5
    first = rows[0]
    fields = "run_id cell_id row_id epoch template_hash prompt_sha256 response extracted reference"
    assert set(fields.split()) | {"scores", "error", "cached", "tokens", "latency"} <= set(first)
    assert "prompt" not in first and first["row_id"] == "r0" and first["reference"] == "0"
    assert first["scores"]["ExactMatch"] in (0.0, 1.0)
    reference = report.manifest["samples"]
    assert {k: reference[k] for k in ("path", "sha256", "count")} == {
        "path": "samples.jsonl",
        "sha256": digest,
        "count": 5,
    }
    assert reference["store_key"] == f"samples:{report.run_id}"  # evaluate() kept them there
    assert report.manifest["manifest_sha256"] == manifest_hash(report.manifest)
    full, _ = read_jsonl(report.to_jsonl(tmp_path / "full.jsonl"))
    assert full[0]["prompt"] == [{"role": "user", "content": "0 + 0"}]


def test_baseline_from_manifest_file_store_and_bad_inputs(tmp_path: Path) -> None:
    base = _run(tmp_path, 0.1)
    base.to_jsonl(tmp_path / "runs" / "base.samples.jsonl")
    manifest_path = tmp_path / "runs" / "base.json"
    manifest_path.write_text(json.dumps(base.manifest))
    loaded = load_baseline(str(manifest_path))
    assert loaded.run_id == base.run_id and len(loaded.samples) == 200
    assert _run(tmp_path, 0.4).compare(str(manifest_path)).verdict == "regressed"

    from pytest_themis.storage import ExperimentStorage

    store = ExperimentStorage(tmp_path / "store")
    store_run(store, "base-run", base.manifest, report_run_data(base).samples)
    manifest, samples = load_stored_run(store, "latest")  # type: ignore[misc]
    assert manifest["run_id"] == base.run_id and len(samples) == 200
    assert load_baseline("base-run", storage=store).run_id == "base-run"

    with pytest.raises(ConfigurationError, match="does not exist"):
        load_baseline(str(tmp_path / "missing.json"))
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    with pytest.raises(ConfigurationError, match="not a themis manifest"):
        load_baseline(str(tmp_path / "notes.json"))
    bare = dict(base.manifest)
    bare.pop("samples")
    (tmp_path / "bare.json").write_text(json.dumps(bare))
    with pytest.raises(ConfigurationError, match="no per-sample results"):
        load_baseline(str(tmp_path / "bare.json"))
    (tmp_path / "runs" / "base.samples.jsonl").write_text("{}\n")
    with pytest.raises(ConfigurationError, match="changed since"):
        load_baseline(str(manifest_path))
    with pytest.raises(ConfigurationError, match="neither a file nor a run id"):
        load_baseline("no-such-run", storage=store)
    with pytest.raises(ConfigurationError, match="margin"):
        compare_runs(loaded, loaded, margin=1.5)
    store.close()


def _records(
    outcomes: dict[str, list[int]], answers: dict[str, list[str]]
) -> list[EvaluationRecord]:
    cell = CellSpec(ModelSpec("m", "fake"), "p", SamplingConfig(temperature=1.0))
    out = []
    for row, scores in outcomes.items():
        for epoch, score in enumerate(scores):
            task = GenerationTask(cell, row, epoch, ({"role": "user", "content": row},))
            gen = GenerationRecord(task, text=answers[row][epoch])
            scores = {"ExactMatch": MetricScore("ExactMatch", float(score))}
            out.append(EvaluationRecord(gen, answers[row][epoch], scores))
    return out


def test_epochs_give_pass_at_k_maj_at_k_and_clustered_intervals() -> None:
    outcomes = {"a": [1, 0, 0], "b": [0, 0, 0], "c": [1, 1, 0], "d": [1, 1, 1]}
    answers = {"a": ["4", "5", "5"], "b": ["1", "2", "3"], "c": ["7", "7", "8"], "d": ["9"] * 3}
    report = EvaluationReport.from_records(_records(outcomes, answers), ["ExactMatch"])
    metrics = report.metrics
    assert metrics["pass@1"].mean == pytest.approx((1 / 3 + 0 + 2 / 3 + 1) / 4)
    # pass@2 per row = 1 - C(n-c, 2)/C(3, 2): a: 1-1/3, b: 0, c: 1, d: 1
    assert metrics["pass@2"].mean == pytest.approx((2 / 3 + 0 + 1 + 1) / 4)
    assert metrics["pass@3"].mean == pytest.approx(3 / 4)
    assert metrics["maj@3"].mean == pytest.approx(2 / 4)  # a votes "5" (wrong), c "7", d "9"
    agg = metrics["ExactMatch"]
    assert agg.ci_method == "cluster" and agg.count == 12
    assert agg.mean == pytest.approx(6 / 12)
    assert agg.ci_low < agg.mean < agg.ci_high


def test_evaluate_keeps_samples_by_run_id_and_compares_with_a_baseline(tmp_path: Path) -> None:
    store = tmp_path / "store"
    common: dict[str, Any] = dict(
        dataset=ROWS, model="fake:m", prompt="{q}", reference_field="answer",
        metrics=["exact_match"], storage=store,
    )  # fmt: skip
    first = evaluate(run_id="first", wrong_rate=0.1, **common)
    assert first.comparison is None
    again = evaluate(run_id="second", baseline="first", wrong_rate=0.1, **common)
    assert again.comparison is not None and again.comparison.baseline_run_id == "first"
    assert again.comparison.verdict == "unchanged"
    latest = evaluate(run_id="third", baseline="latest", wrong_rate=0.1, **common)
    assert latest.comparison is not None and latest.comparison.baseline_run_id == "second"
    with pytest.raises(ConfigurationError, match="neither a file nor a run id"):
        evaluate(run_id="fourth", baseline="nope", wrong_rate=0.1, **common)


def test_store_run_round_trips_many_chunks_in_order(tmp_path: Path) -> None:
    from pytest_themis.storage import ExperimentStorage

    store = ExperimentStorage(tmp_path / "store")
    rows = ({"row_id": f"r{i}", "scores": {"x": i % 2}} for i in range(5_100))  # 11 entries
    assert store_run(store, "big", {"run_id": "big", "cells": []}, rows) == 5_100
    found = load_stored_run(store, "big")
    assert found is not None
    manifest, samples = found
    assert manifest["run_id"] == "big"
    assert [s["row_id"] for s in samples] == [f"r{i}" for i in range(5_100)]
    assert store.get("samples:big")["chunks"] == 11  # type: ignore[index]
    store.close()


def test_samples_are_kept_before_the_run_closes_its_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_themis.storage import ExperimentStorage

    events: list[str] = []
    real_set_many, real_close = ExperimentStorage.set_many, ExperimentStorage.close

    def set_many(self: Any, items: Any) -> None:
        items = list(items)
        events.extend("samples" if key.startswith("samples:") else "gen" for key, _ in items)
        real_set_many(self, items)

    def close(self: Any) -> None:
        events.append("close")
        real_close(self)

    monkeypatch.setattr(ExperimentStorage, "set_many", set_many)
    monkeypatch.setattr(ExperimentStorage, "close", close)
    evaluate("demo", model="fake:fake-math-llm", limit=5, storage=tmp_path / "store")
    assert "samples" in events and "close" in events
    assert events.index("close") > max(i for i, e in enumerate(events) if e == "samples")
    assert events[-1] == "close"  # nothing reopens the store after the run closed it
    assert load_stored_run(ExperimentStorage(tmp_path / "store"), "latest") is not None
