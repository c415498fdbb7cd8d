"""evaluate() and the themis marker parse the same inputs into the same plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_themis import evaluate
from pytest_themis.errors import ConfigurationError

ROWS = [{"id": f"r{i}", "q": f"{i}+1", "a": str(i + 1)} for i in range(3)]

PROMPTS: list[Any] = [
    "Q: {q}",
    ["only {q}"],
    ["first {q}", "second {q}"],
    {"short": "{q}", "long": "Answer with a number: {q}"},
]


def _canonical(items: list[Any]) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in items)


def _plan_of(manifest: dict[str, Any]) -> dict[str, Any]:
    return {
        "templates": _canonical(manifest["templates"]),
        "models": _canonical(manifest["models"]),
        "sampling": _canonical(manifest["sampling"]),
        "cells": sorted(cell["cell_id"] for cell in manifest["cells"]),
    }


def _marker_manifest(pytester: pytest.Pytester, prompts: Any) -> dict[str, Any]:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.themis(
            dataset={ROWS!r},
            prompts={prompts!r},
            models=["fake:fake-oracle"],
            sampling=[{{"temperature": 0.0, "max_tokens": 64}},
                      {{"temperature": 0.5, "max_tokens": 64}}],
            reference_field="a",
            metrics=["exact_match"],
        )
        def test_eval(themis_report):
            assert themis_report.total == {len(ROWS)}
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2 * (1 if isinstance(prompts, str) else len(prompts)))
    return json.loads((pytester.path / ".themis_cache" / "manifest.json").read_text())


@pytest.mark.parametrize("prompts", PROMPTS, ids=["str", "list1", "list2", "dict"])
def test_both_doors_plan_the_same_cells(
    pytester: pytest.Pytester, tmp_path: Path, prompts: Any
) -> None:
    from_marker = _plan_of(_marker_manifest(pytester, prompts))
    report = evaluate(
        dataset=ROWS,
        prompt=prompts,
        model="fake:fake-oracle",
        temperature=[0.0, 0.5],
        max_tokens=64,
        reference_field="a",
        metrics=["exact_match"],
        storage=tmp_path / "cache",
    )
    from_evaluate = _plan_of(report.manifest)
    assert from_evaluate == from_marker
    names = {json.loads(t)["name"] for t in from_evaluate["templates"]}
    expected = {
        str: {"prompt"},
        list: {"prompt"} if len(prompts) == 1 else {"prompt0", "prompt1"},
        dict: set(prompts) if isinstance(prompts, dict) else set(),
    }[type(prompts)]
    assert names == expected


def test_both_doors_reject_a_prompt_that_is_not_text(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match=r"prompts\['n'\] must be a str"):
        evaluate(
            dataset=ROWS,
            prompt={"n": 5},
            model="fake:fake-oracle",
            metrics=["exact_match"],
            reference_field="a",
            storage=None,
        )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.themis(dataset=[{"q": "1"}], prompts={"n": 5}, models="fake:x",
                            metrics=["exact_match"], reference_field="q")
        def test_eval(themis_report):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*prompts[[]'n'[]] must be a str or PromptTemplate, got int*"])


def test_the_pytest_door_does_not_import_the_evaluate_door(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import json
        import sys

        def pytest_sessionfinish(session):
            with open("modules.json", "w") as fh:
                json.dump(sorted(m for m in sys.modules if m.startswith("pytest_themis")), fh)
        """
    )
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.themis(dataset={ROWS!r}, prompts="{{q}}", models="fake:fake-oracle",
                            reference_field="a", metrics=["exact_match"])
        def test_eval(themis_report):
            assert themis_report.total == {len(ROWS)}
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    imported = set(json.loads((pytester.path / "modules.json").read_text()))
    assert "pytest_themis.experiment.builder" in imported
    assert "pytest_themis.api" not in imported
