"""End to end: per-sample results, --themis-baseline verdicts and regression gates (fake model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from plugin_support import read_manifest

# The fake provider's wrong answers are nested: raising wrong_rate flips a known share of rows
# from right to wrong and nothing back. Each run gets its own cache folder so no run reuses
# another's answers.
TEST_FILE = """
import os
import pytest
from pytest_themis.core.entities import ModelSpec

ROWS = [{"id": f"r{i}", "q": f"{i} + {3 * i}", "a": str(4 * i)}
        for i in range(int(os.environ["THEMIS_ROWS"]))]
MODEL = ModelSpec("m", "fake", options={"wrong_rate": float(os.environ["THEMIS_WRONG"])})

@pytest.mark.themis(dataset=ROWS, prompts={PROMPTS}, models=[MODEL], reference_field="a",
                    metrics=["exact_match"], epochs=int(os.environ.get("THEMIS_EPOCHS", "1")))
def test_eval(themis_report):
    pass
"""


def _run(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    *args: str,
    rows: int = 200,
    wrong: float = 0.1,
    prompts: str = "'{q}'",
    subprocess: bool = False,
) -> pytest.RunResult:
    monkeypatch.setenv("THEMIS_ROWS", str(rows))
    monkeypatch.setenv("THEMIS_WRONG", str(wrong))
    pytester.makepyfile(test_eval=TEST_FILE.replace("{PROMPTS}", prompts))
    cache = pytester.path / name
    flags = ["-p", "no:cacheprovider", f"--themis-cache-dir={cache}", f"--themis-run-id={name}"]
    if subprocess:
        return pytester.runpytest_subprocess(*flags, *args)
    return pytester.runpytest(*flags, *args)


def _manifest(pytester: pytest.Pytester, name: str) -> Path:
    return pytester.path / name / "manifest.json"


def test_samples_file_run_file_and_manifest_reference(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _run(pytester, monkeypatch, "base", "--themis-log-prompts=hash", rows=20)
    result.assert_outcomes(passed=1)
    manifest = read_manifest(_manifest(pytester, "base"))
    ref = manifest["samples"]
    assert ref["count"] == 20 and ref["path"] == "runs/base.samples.jsonl"
    lines = (pytester.path / "base" / ref["path"]).read_text().splitlines()
    sample = json.loads(lines[0])
    assert sample["run_id"] == "base" and sample["row_id"] == "r0" and sample["epoch"] == 0
    assert "prompt_sha256" in sample and "prompt" not in sample
    run_file = json.loads((pytester.path / "base" / "runs" / "base.json").read_text())
    assert run_file["samples"]["path"] == "base.samples.jsonl"
    assert run_file["samples"]["sha256"] == ref["sha256"]
    # a later run keeps the earlier run's file: runs stay addressable by id
    _run(pytester, monkeypatch, "base", "--themis-run-id=second", rows=20)
    assert (pytester.path / "base" / "runs" / "base.json").is_file()
    assert (pytester.path / "base" / "runs" / "second.json").is_file()
    custom = pytester.path / "exported.jsonl"
    _run(pytester, monkeypatch, "other", f"--themis-samples={custom}", rows=20)
    assert len(custom.read_text().splitlines()) == 20


@pytest.mark.slow
def test_regressed_run_fails_and_equal_run_passes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(pytester, monkeypatch, "base", wrong=0.1).assert_outcomes(passed=1)
    baseline = f"--themis-baseline={_manifest(pytester, 'base')}"
    junit = pytester.path / "junit.xml"
    worse = _run(
        pytester, monkeypatch, "worse", baseline, "--themis-fail-on-regression",
        f"--junitxml={junit}", wrong=0.4,
    )  # fmt: skip
    worse.assert_outcomes(failed=1)
    assert worse.ret == 1
    worse.stdout.fnmatch_lines(
        ["*--themis-fail-on-regression=0*ExactMatch*regressed*", "*themis vs baseline*",
         "*m-prompt-t0*ExactMatch*regressed*", "verdict: regressed"]
    )  # fmt: skip
    assert 'name="themis_vs_baseline" value="regressed"' in junit.read_text()
    comparison = read_manifest(_manifest(pytester, "worse"))["comparison"]
    assert comparison["baseline_run_id"] == "base" and comparison["verdict"] == "regressed"

    same = _run(pytester, monkeypatch, "same", baseline, "--themis-fail-on-regression", wrong=0.1)
    same.assert_outcomes(passed=1)
    assert same.ret == 0
    same.stdout.fnmatch_lines(["verdict: unchanged"])
    # by run id from the store, and "latest"
    stored = _run(pytester, monkeypatch, "base", "--themis-baseline=base", "--themis-run-id=again")
    stored.stdout.fnmatch_lines(["baseline base *", "verdict: unchanged"])
    latest = _run(pytester, monkeypatch, "base", "--themis-baseline=latest", "--themis-run-id=l")
    latest.stdout.fnmatch_lines(["baseline again *"])


@pytest.mark.slow
def test_small_run_is_inconclusive_and_fails_only_the_strict_gate(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(pytester, monkeypatch, "base", rows=30, wrong=0.2).assert_outcomes(passed=1)
    baseline = f"--themis-baseline={_manifest(pytester, 'base')}"
    loose = _run(
        pytester, monkeypatch, "new", baseline, "--themis-fail-on-regression=0", rows=30, wrong=0.3
    )
    loose.assert_outcomes(passed=1)
    loose.stdout.fnmatch_lines(
        ["*ExactMatch*inconclusive*", "*minimum detectable difference is * points*",
         "verdict: inconclusive"]
    )  # fmt: skip
    strict = _run(
        pytester, monkeypatch, "new2", baseline, "--themis-require-noninferior=0.02",
        rows=30, wrong=0.3,
    )  # fmt: skip
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(
        ["*--themis-require-noninferior=0.02*lower bound*",
         "*cannot detect a 2-point drop with 30 rows; ~* needed*"]
    )  # fmt: skip


def test_themis_report_compare_assert_not_worse_in_a_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(pytester, monkeypatch, "base", rows=100, wrong=0.1).assert_outcomes(passed=1)
    monkeypatch.setenv("THEMIS_BASE", str(_manifest(pytester, "base")))
    body = (
        "def test_eval(themis_report):\n"
        "    comparison = themis_report.compare(os.environ['THEMIS_BASE'])\n"
        "    assert [c.cell_id for c in comparison.cells] == ['m-prompt-t0']\n"
        "    comparison.assert_not_worse('ExactMatch', margin=0.02)\n"
    )
    test_file = TEST_FILE.replace("{PROMPTS}", "'{q}'").replace(
        "def test_eval(themis_report):\n    pass\n", body
    )
    monkeypatch.setenv("THEMIS_ROWS", "100")
    for name, wrong, outcome in (("same", 0.1, "passed"), ("worse", 0.5, "failed")):
        monkeypatch.setenv("THEMIS_WRONG", str(wrong))
        pytester.makepyfile(test_eval=test_file)
        result = pytester.runpytest("-p", "no:cacheprovider", f"--themis-cache-dir={name}")
        result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines(["*ExactMatch vs baseline base*significant drop*"])


def test_a_test_missing_from_the_baseline_is_reported_not_failed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THEMIS_ROWS", "20")
    monkeypatch.setenv("THEMIS_WRONG", "0.1")
    other = (
        "\n\n@pytest.mark.themis(dataset=ROWS[:10], prompts='{q}', models=[MODEL], "
        "reference_field='a', metrics=['exact_match'])\n"
        "def test_other(themis_report):\n    pass\n"
    )
    pytester.makepyfile(test_eval=TEST_FILE.replace("{PROMPTS}", "'{q}'") + other)
    flags = ["-p", "no:cacheprovider"]
    pytester.runpytest(*flags, "--themis-cache-dir=a", "--themis-run-id=a", "-k", "not test_other")
    result = pytester.runpytest(
        *flags, "--themis-cache-dir=b", "--themis-baseline=a/manifest.json",
        "--themis-fail-on-regression=0",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["not in the baseline: test_eval.py::test_other/m-prompt-t0", "verdict: *"]
    )


@pytest.mark.slow
def test_preset_items_are_compared_and_gated(pytester: pytest.Pytester) -> None:
    args = ["-p", "no:cacheprovider", "--themis-preset=demo", "--themis-model=fake:fake-math-llm"]
    first = pytester.runpytest_subprocess(*args, "--themis-cache-dir=a", "--themis-run-id=first")
    first.assert_outcomes(passed=1)
    again = pytester.runpytest_subprocess(
        *args, "--themis-cache-dir=b", "--themis-baseline=a/manifest.json",
        "--themis-require-noninferior=0.5",
    )  # fmt: skip
    again.assert_outcomes(passed=1)
    again.stdout.fnmatch_lines(["baseline first (margin 0.5)", "demo [[]*unchanged", "verdict: *"])


@pytest.mark.parametrize(
    "args,message",
    [
        (["--themis-baseline=missing/manifest.json"], "*does not exist*"),
        (["--themis-baseline=notes.json"], "*not a themis manifest*"),
        (["--themis-baseline=bare.json"], "*no per-sample results*"),
        (["--themis-baseline=BASE", "--themis-fail-on-regression=1.5"], "*margin in [[]0, 1]*"),
        (["--themis-baseline=BASE", "--themis-require-noninferior=-0.1"], "*margin in [[]0, 1]*"),
        (["--themis-fail-under=pass@3=0.9"], "*runs 1 epoch(s); pass@3 needs*"),
        (["--themis-baseline=BASE", "ROWS=30"], "*recorded on another dataset*"),
        (["--themis-fail-on-regression=0.1"], "*needs a baseline*"),
    ],
)
def test_bad_input_is_a_usage_error_before_any_generation(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    _run(pytester, monkeypatch, "base", rows=40).assert_outcomes(passed=1)
    (pytester.path / "notes.json").write_text('{"hello": 1}')
    bare = read_manifest(_manifest(pytester, "base"))
    bare.pop("samples")
    (pytester.path / "bare.json").write_text(json.dumps(bare))
    rows = 30 if "ROWS=30" in args else 40
    args = [a.replace("BASE", str(_manifest(pytester, "base"))) for a in args if a != "ROWS=30"]
    result = _run(pytester, monkeypatch, "new", *args, rows=rows)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert not _manifest(pytester, "new").exists()


def test_pass_at_k_gate_with_epochs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THEMIS_EPOCHS", "3")
    result = _run(pytester, monkeypatch, "ep", "--themis-fail-under=pass@3=0.99", rows=20)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pass@3 mean 0.800*is not >= 0.99*"])
    cell = read_manifest(_manifest(pytester, "ep"))["cells"][0]
    assert {"pass@1", "pass@2", "pass@3", "maj@3"} <= set(cell["metrics"])
    assert cell["metrics"]["ExactMatch"]["ci_method"] == "cluster"


@pytest.mark.slow
def test_xdist_verdicts_equal_serial_verdicts(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = "{'plain': '{q}', 'asked': 'Compute: {q}', 'terse': '{q} ='}"
    _run(pytester, monkeypatch, "base", wrong=0.1, prompts=prompts).assert_outcomes(passed=3)
    baseline = f"--themis-baseline={_manifest(pytester, 'base')}"
    verdicts = {}
    for name, extra in (("serial", ["-n", "0"]), ("xdist", ["-n", "2"])):
        result = _run(
            pytester, monkeypatch, name, baseline, *extra, wrong=0.3, prompts=prompts,
            subprocess=True,
        )  # fmt: skip
        assert result.ret == 0, result.stdout.str()
        comparison = read_manifest(_manifest(pytester, name))["comparison"]
        verdicts[name] = {
            c["cell_id"]: (c["verdict"], {k: m["p_adjusted"] for k, m in c["metrics"].items()})
            for c in comparison["cells"]
        }
    assert len(verdicts["serial"]) == 3
    assert verdicts["serial"] == verdicts["xdist"]
