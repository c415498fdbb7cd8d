"""Items 3 and 4 and the exit codes: the lower-bound gate end to end, the demo's default gate."""

from __future__ import annotations

import json
import math

import pytest

from pytest_themis.core.entities import CellSpec, GenerationTask, ModelSpec
from pytest_themis.presets import get_benchmark_preset
from pytest_themis.providers.fake import FakeProvider


def _demo_correct() -> tuple[int, int]:
    """Correct answers of the fake model on the demo, judged by string comparison with the gold
    answer — independently of the extractor and metric under test."""
    preset = get_benchmark_preset("demo")
    model = ModelSpec("fake-math-llm", "fake")
    cell = CellSpec(model, preset.prompt.name, preset.sampling)
    provider = FakeProvider()
    rows = list(preset.load())
    correct = 0
    for row in rows:
        messages = preset.prompt.render_messages(row, row["id"])
        text = provider.answer(GenerationTask(cell, str(row["id"]), 0, messages)).text
        correct += text.strip().endswith(f"#### {row['answer']}")
    return correct, len(rows)


def _wilson_low(k: int, n: int, z: float = 1.959963984540054) -> float:
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def _args(pytester: pytest.Pytester, *extra: str) -> list[str]:
    return ["-p", "no:cacheprovider", f"--themis-cache-dir={pytester.path / 'cache'}", *extra]


def test_demo_score_is_pinned_independently_of_the_extractor(door: pytest.Pytester) -> None:
    correct, n = _demo_correct()
    assert (correct, n) == (41, 50)  # the fake model's seeded mistakes: 9 of 50
    result = door.runpytest("--themis-preset=demo", *_args(door))
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"*NumericMatch {correct / n:.3f} [[]*"])


def test_lower_gate_compares_the_lower_bound_end_to_end(door: pytest.Pytester) -> None:
    correct, n = _demo_correct()
    low, mean = _wilson_low(correct, n), correct / n
    threshold = round((low + mean) / 2, 2)  # the mean clears it, the lower bound does not
    assert low < threshold < mean
    failing = door.runpytest(
        "--themis-preset=demo", f"--themis-fail-under={threshold}", "--themis-gate=lower",
        *_args(door),
    )  # fmt: skip
    failing.assert_outcomes(failed=1)
    assert failing.ret == 1
    failing.stdout.fnmatch_lines([f"*lower 95% CI bound {low:.3f} (mean {mean:.3f})*"])
    failing.stdout.fnmatch_lines([f"cell*time*>={threshold:g}", "demo", f"*FAIL {low:.3f}"])
    manifest = json.loads((door.path / "cache" / "manifest.json").read_text())
    (gate,) = manifest["cells"][0]["gates"]
    assert gate["passed"] is False and gate["mode"] == "lower"
    assert gate["compared"] == pytest.approx(low, abs=1e-9)
    # The same threshold compared with the mean passes.
    point = door.runpytest("--themis-preset=demo", f"--themis-fail-under={threshold}", *_args(door))
    point.assert_outcomes(passed=1)
    assert point.ret == 0
    point.stdout.fnmatch_lines(["demo", f"*ok {mean:.3f}"])


@pytest.mark.slow  # a pytest subprocess (the broken extractor must not leak into this process)
def test_demo_default_gate_fails_broken_scoring(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        brokenscoring="""
from pytest_themis.errors import ExtractionError
from pytest_themis.evaluation import extractors


def _nothing(self, text):
    raise ExtractionError("extractor returns nothing")


extractors.GSM8KExtractor.extract = _nothing
"""
    )
    monkeypatch.setenv("PYTHONPATH", str(pytester.path))
    result = pytester.runpytest_subprocess(
        "-p", "brokenscoring", "--themis-preset=demo", *_args(pytester)
    )
    result.assert_outcomes(failed=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*--themis-fail-under NumericMatch=0.6 (point) failed*"])


def test_exit_code_4_for_a_gate_outside_the_metrics_range(door: pytest.Pytester) -> None:
    result = door.runpytest("--themis-preset=demo", "--themis-fail-under=85", *_args(door))
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*NumericMatch scores lie in [[]0, 1[]]*e.g. 0.85*"])
    assert not (door.path / "cache" / "manifest.json").exists()  # nothing ran


def test_exit_code_4_for_a_gate_on_an_unknown_metric(door: pytest.Pytester) -> None:
    result = door.runpytest(
        "--themis-preset=demo", "--themis-fail-under=NumericMatchh=0.5", *_args(door)
    )
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*no metric 'NumericMatchh'*did you mean 'NumericMatch'*"])


def test_exit_code_4_for_rows_missing_the_reference_field(door: pytest.Pytester) -> None:
    door.makepyfile(
        """
        import pytest

        ROWS = [{"id": "a", "q": "2+2", "a": "4"}, {"id": "b", "q": "3+3"}]

        @pytest.mark.themis(dataset=ROWS, prompts="{q}", models="fake:fake-math-llm",
                            reference_field="a", metrics=["exact_match"])
        def test_quality(themis_report):
            pass
        """
    )
    result = door.runpytest(*_args(door))
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*row 'b' has no reference field 'a'*"])
    assert not (door.path / "cache").exists()  # checked before the cache was even opened


def test_themis_report_without_the_marker_says_add_the_marker(door: pytest.Pytester) -> None:
    door.makepyfile("def test_quality(themis_report):\n    pass\n")
    result = door.runpytest(*_args(door))
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*requests themis_report but is not marked; add @pytest.mark.themis(*"]
    )


def test_unusable_cache_folder_is_one_usage_error(door: pytest.Pytester) -> None:
    (door.path / "afile").write_text("not a folder")
    result = door.runpytest(
        "-p", "no:cacheprovider", "--themis-preset=demo",
        f"--themis-cache-dir={door.path / 'afile' / 'cache'}",
    )  # fmt: skip
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*cannot use the cache folder*afile*pass a writable folder*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert "regenerated" not in result.stdout.str() + result.stderr.str()


def test_damaged_cache_database_is_one_usage_error(door: pytest.Pytester) -> None:
    cache = door.path / "cache"
    cache.mkdir()
    (cache / "cache.db").write_bytes(b"garbage, not sqlite" * 64)
    result = door.runpytest("--themis-preset=demo", *_args(door))
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*cache database*cache.db is damaged*move it aside*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_missing_dataset_file_names_each_folder_looked_in_once(door: pytest.Pytester) -> None:
    door.makepyfile(
        """
        import pytest

        @pytest.mark.themis(dataset="no_such_rows.jsonl", prompts="{q}",
                            models="fake:fake-math-llm", reference_field="a")
        def test_quality(themis_report):
            pass
        """
    )
    result = door.runpytest(*_args(door))
    assert result.ret == 4
    (line,) = [ln for ln in result.stderr.lines if "looked in" in ln]
    looked = line.split("looked in ", 1)[1].split(")", 1)[0].split(", ")
    assert str(door.path) in looked  # the test's folder, which is also rootdir and cwd here
    assert len(looked) == len(set(looked))  # each folder once
