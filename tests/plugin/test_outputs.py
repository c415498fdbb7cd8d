"""--themis-html, --themis-md (and $GITHUB_STEP_SUMMARY), --themis-plot; `themis compare` and
`themis show` on the files a pytest run wrote."""

from __future__ import annotations

import json
import re

import pytest

from pytest_themis.cli import main

pytestmark = pytest.mark.timeout(120)

TEST_FILE = """
import os
import pytest
from pytest_themis.core.entities import ModelSpec

ROWS = [{"id": f"r{i}", "q": f"{i} + {3 * i}", "a": str(4 * i)} for i in range(80)]
MODELS = [ModelSpec(n, "fake", options={"wrong_rate": float(os.environ["THEMIS_WRONG"])})
          for n in ("m1", "m2")]

@pytest.mark.themis(dataset=ROWS, prompts=["{q}", "Q: {q}"], models=MODELS, reference_field="a",
                    metrics=["exact_match"])
def test_eval(themis_report):
    pass
"""


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, name: str, wrong: float,
         *args: str) -> pytest.RunResult:  # fmt: skip
    monkeypatch.setenv("THEMIS_WRONG", str(wrong))
    pytester.makepyfile(test_eval=TEST_FILE)
    flags = ["-p", "no:cacheprovider", f"--themis-cache-dir={pytester.path / name}"]
    return pytester.runpytest(*flags, f"--themis-run-id={name}", *args)


def test_html_markdown_plot_and_step_summary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = pytester.path / "step-summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = _run(
        pytester, monkeypatch, "run1", 0.2,
        "--themis-html=out/report.html", "--themis-md=out/summary.md", "--themis-plot=out/c.svg",
    )  # fmt: skip
    result.assert_outcomes(passed=4)
    out = pytester.path / "out"
    result.stdout.fnmatch_lines(
        [f"themis html report: {out / 'report.html'}", f"themis plot: {out / 'c.svg'}"]
    )
    html = (out / "report.html").read_text()
    assert html.count('<rect class="bar"') == 4 and '"run1"' not in html.split("<script")[0]
    manifest = json.loads((pytester.path / "run1" / "manifest.json").read_text())
    md = (out / "summary.md").read_text()
    assert md.startswith("### themis run `run1`")
    for cell in manifest["cells"]:
        agg = cell["metrics"]["ExactMatch"]
        assert (
            f"[{cell['cell_id']}] | ExactMatch {agg['mean']:.3f} "
            f"[{agg['ci_low']:.3f}, {agg['ci_high']:.3f}] | 80 |" in md
        )
    assert summary.read_text() == "earlier step\n" + md
    svg = (out / "c.svg").read_text()
    assert svg.startswith("<?xml") and svg.count('class="bar"') == 4


def test_markdown_shows_gates_and_verdicts(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    _run(pytester, monkeypatch, "base", 0.1).assert_outcomes(passed=4)
    base = pytester.path / "base" / "manifest.json"
    result = _run(
        pytester, monkeypatch, "new", 0.6, f"--themis-baseline={base}",
        "--themis-fail-under=ExactMatch=0.5", "--themis-md=new.md",
    )  # fmt: skip
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) + outcomes.get("passed", 0) == 4 and outcomes["failed"] > 0
    md = (pytester.path / "new.md").read_text()
    assert md.count("❌ ExactMatch") == outcomes["failed"]
    assert md.count("✅ ExactMatch") == outcomes.get("passed", 0)
    assert "**vs baseline `base`** (margin 0): **regressed**" in md
    assert len(re.findall(r"\| \d+ \| regressed \|", md)) == 4


def test_themis_compare_gives_the_verdicts_of_themis_baseline(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    _run(pytester, monkeypatch, "base", 0.3).assert_outcomes(passed=4)
    base = pytester.path / "base" / "manifest.json"
    _run(pytester, monkeypatch, "new", 0.5, f"--themis-baseline={base}")
    new = pytester.path / "new" / "manifest.json"
    recorded = json.loads(new.read_text())["comparison"]
    capsys.readouterr()
    code = main(["compare", str(base), str(new)])
    out = capsys.readouterr().out
    assert code == (1 if recorded["verdict"] == "regressed" else 0)
    assert out.rstrip().endswith(f"verdict: {recorded['verdict']}")
    for cell in recorded["cells"]:
        line = next(x for x in out.splitlines() if f"[{cell['cell_id']}]" in x)
        assert line.split()[-1] == cell["verdict"]
    # `themis show` of the earlier run's manifest prints its table
    assert main(["show", str(base)]) == 0
    shown = capsys.readouterr().out
    lines = shown.splitlines()
    for cell in json.loads(base.read_text())["cells"]:
        at = next(i for i, line in enumerate(lines) if line.strip().startswith(cell["cell_id"]))
        mean = cell["metrics"]["ExactMatch"]["mean"]
        assert f"ExactMatch {mean:.3f}" in " ".join(lines[at : at + 2])
