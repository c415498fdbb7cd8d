"""Extension points: an installed package registers a preset and a metric through the
``pytest_themis`` entry-point group; a conftest implements themis' pytest hooks."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

PACK = '''
from pathlib import Path

from pytest_themis.evaluation.metrics.base import Metric
from pytest_themis.generation.templates import PromptTemplate
from pytest_themis.hookspecs import hookimpl
from pytest_themis.presets import BenchmarkPreset


class SameParity(Metric):
    """1.0 when prediction and reference are both even or both odd."""

    def compute(self, prediction, reference):
        return float(int(prediction) % 2 == int(reference) % 2)


@hookimpl
def themis_register_metrics():
    return {"same_parity": SameParity}


@hookimpl
def themis_register_presets():
    preset = BenchmarkPreset(
        name="parity-pack",
        description="rows shipped by an installed package",
        source=None,
        config=None,
        split="train",
        revision=None,
        id_field="id",
        reference_field="answer",
        prompt=PromptTemplate("plain", "{question}"),
        primary_metric="SameParity",
        metric_factories=("same_parity",),
        default_model="fake:fake-oracle",
        packaged_file=Path(__file__).with_name("rows.jsonl"),
    )
    return {preset.name: preset}
'''

CLASH = """
from pytest_themis.hookspecs import hookimpl


@hookimpl
def themis_register_metrics():
    return {"same_parity": object}
"""


def _install(site: Path, name: str, source: str, files: dict[str, str] | None = None) -> None:
    """A real installed distribution: the module plus a dist-info with entry points."""
    package = site / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(source))
    for file, text in (files or {}).items():
        (package / file).write_text(text)
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[pytest_themis]\n{name} = {name}\n")


@pytest.fixture
def site(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = pytester.path / "site"
    rows = "".join(
        json.dumps({"id": f"r{i}", "question": f"{i}+1", "answer": i + 1}) + "\n" for i in range(4)
    )
    _install(path, "themis_pack", PACK, {"rows.jsonl": rows})
    monkeypatch.setenv("PYTHONPATH", str(path))
    return path


def test_an_installed_package_registers_a_preset_and_a_metric(
    pytester: pytest.Pytester, site: Path
) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--themis-preset=parity-pack")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["parity-pack", "*SameParity 1.000*"])
    manifest = json.loads((pytester.path / ".themis_cache" / "manifest.json").read_text())
    assert [c["cell_id"] for c in manifest["cells"]] == ["fake-oracle-plain-t0"]
    assert manifest["cells"][0]["metrics"]["SameParity"]["count"] == 4


@pytest.mark.slow
def test_two_plugins_registering_one_name_is_a_clear_error(
    pytester: pytest.Pytester, site: Path
) -> None:
    _install(site, "themis_clash", CLASH)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--themis-preset=parity-pack")
    assert result.ret != pytest.ExitCode.OK
    output = result.stdout.str() + result.stderr.str()  # a usage error (pre-run check) or a failure
    assert re.search(
        r"metric 'same_parity' is registered by both plugin 'themis_\w+' and plugin 'themis_\w+'",
        output,
    ), output


CONFTEST = """
import json

CALLS = []


def pytest_themis_cell_finished(cell, report):
    CALLS.append(["cell", cell, report["cell_id"], report["metrics"]["ExactMatch"]["mean"]])


def pytest_themis_session_finished(manifest):
    CALLS.append(["session", sorted(c["cell_id"] for c in manifest["cells"])])
    with open("hook_calls.json", "w") as fh:
        json.dump(CALLS, fh)
"""

MARKED = """
import pytest

ROWS = [{"id": f"r{i}", "q": f"{i}+1", "a": str(i + 1)} for i in range(3)]


@pytest.mark.themis(dataset=ROWS, prompts="{q}", models=["fake:fake-oracle", "fake:other"],
                    reference_field="a", metrics=["exact_match"])
def test_first(themis_report):
    assert themis_report.total == 3


@pytest.mark.themis(dataset=ROWS, prompts="{q}", models=["fake:fake-oracle", "fake:other"],
                    reference_field="a", metrics=["exact_match"])
def test_second_reads_the_same_cells(themis_report):
    assert themis_report.total == 3
"""


@pytest.mark.parametrize(
    "workers", [None, pytest.param("2", marks=pytest.mark.slow)], ids=["serial", "xdist"]
)
def test_conftest_hooks_are_called_once_per_cell_on_the_controller(
    pytester: pytest.Pytester, workers: str | None
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(MARKED)
    args = ["-p", "no:cacheprovider"] + (["-n", workers] if workers else [])
    pytester.runpytest_subprocess(*args).assert_outcomes(passed=4)
    calls = json.loads((pytester.path / "hook_calls.json").read_text())
    cells = sorted(c[1:] for c in calls if c[0] == "cell")
    oracle, other = "fake-oracle-prompt-t0", "other-prompt-t0"
    # fake-oracle answers every row right; the other fake model is graded on its own answers
    assert [c[:2] for c in cells] == [[oracle, oracle], [other, other]]
    assert cells[0][2] == 1.0
    assert calls[-1] == ["session", [oracle, other]]
    assert sum(1 for c in calls if c[0] == "session") == 1
