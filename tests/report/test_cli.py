"""The ``themis`` command on the folder store and on real PostgreSQL and S3 (moto) stores."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from report_support import copy_runs, embedded_samples

from pytest_themis.cli import main
from pytest_themis.comparison.samples import load_stored_run
from pytest_themis.storage import open_storage


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: --help and usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_runs_lists_both_runs(two_runs: Any, capsys: pytest.CaptureFixture[str]) -> None:
    store, base, _ = two_runs
    code, out, _ = _run(capsys, "runs", "--store", str(store))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["run", "date", "(UTC)"]
    by_id = {line.split()[0]: line for line in lines[1:]}
    assert set(by_id) == {"base", "new"}
    means = sorted(c.metrics["ExactMatch"].mean for c in base.cells.values())
    assert f"ExactMatch {means[0]:.3f}–{means[-1]:.3f}" in by_id["base"]
    assert by_id["base"].split()[3] == "4"  # cells


def test_show_prints_each_cell(two_runs: Any, capsys: pytest.CaptureFixture[str]) -> None:
    store, base, _ = two_runs
    code, out, _ = _run(capsys, "show", "base", "--store", str(store))
    assert code == 0
    lines = out.splitlines()
    for cell_id, report in base.cells.items():
        agg = report.metrics["ExactMatch"]
        at = next(i for i, line in enumerate(lines) if line.strip().startswith(cell_id))
        values = " ".join(lines[at : at + 2])  # the values follow the id when it is long
        assert f"ExactMatch {agg.mean:.3f} [{agg.ci_low:.3f}, {agg.ci_high:.3f}]" in values


def test_compare_exits_1_on_regression_and_0_otherwise(
    two_runs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store, base, new = two_runs
    code, out, _ = _run(capsys, "compare", "base", "new", "--store", str(store))
    expected = new.compare(base)
    assert expected.verdict == "regressed"
    assert code == 1 and out.rstrip().endswith("verdict: regressed")
    code, out, _ = _run(capsys, "compare", "new", "base", "--store", str(store))
    assert code == 0 and "verdict: improved" in out


def test_export_jsonl_and_csv(two_runs: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path):
    store, base, _ = two_runs
    code, out, _ = _run(capsys, "export", "base", "--store", str(store))
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == len(base.records) == 240
    target = tmp_path / "base.csv"
    code, _, _ = _run(
        capsys, "export", "base", "--store", str(store), "--format", "csv", "-o", str(target)
    )
    table = list(csv.DictReader(io.StringIO(target.read_text())))
    assert code == 0 and len(table) == 240
    wrong = sum(1 for r in table if r["ExactMatch"] == "0.0")
    assert wrong == sum(1 for r in rows if r["scores"]["ExactMatch"] == 0.0) > 0


def test_report_writes_html(two_runs: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path):
    """With ``--baseline`` the samples are paired: "changed vs baseline" flags exactly the
    discordant pairs of the comparison."""
    store, base, new = two_runs
    target = tmp_path / "report.html"
    code, out, _ = _run(
        capsys, "report", "new", "--baseline", "base", "-o", str(target), "--store", str(store)
    )
    text = target.read_text()
    assert code == 0 and str(target) in out
    assert text.count('class="bar"') == 4 and "vs baseline base" in text
    samples = embedded_samples(text)
    discordant = sum(
        (m.worse or 0) + (m.better or 0)
        for cell in new.compare(base).cells
        for m in cell.metrics.values()
    )
    assert len(samples) == 240 and sum(s[10] for s in samples) == discordant > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "no-such-run"], "run 'no-such-run' is neither a file nor a run id kept"),
        (["show", "missing/manifest.json"], "run file missing/manifest.json does not exist"),
        (["export", "base", "--format", "xml"], "invalid choice: 'xml'"),
        (["report", "base"], "the following arguments are required: -o/--output"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["runs", "--store", "postgresql://"], "error:"),
        (["runs", "--store", "no/such/folder"], "--store no/such/folder: no such folder"),
    ],
)
def test_bad_arguments_are_one_line_errors_with_exit_2(
    two_runs: Any, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    store, _, _ = two_runs
    extra = [] if "--store" in argv else ["--store", str(store)]
    if argv == ["frobnicate"]:
        extra = []
    code, out, err = _run(capsys, *argv, *extra)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_latest_of_an_empty_store_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = _run(capsys, "show", "latest", "--store", str(tmp_path))
    assert code == 2 and out == ""
    assert err.strip() == (
        "themis show: error: run 'latest': no earlier run is recorded here; "
        "`themis runs` lists the runs this store keeps"
    )


@pytest.mark.parametrize("command", ["runs", "show", "compare", "report", "export"])
def test_help_of_each_subcommand(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = _run(capsys, command, "--help")
    assert code == 0 and out.startswith(f"usage: themis {command}") and "--store" in out


def test_show_of_a_manifest_file_needs_no_store(
    two_runs: Any,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, base, _ = two_runs
    source = open_storage(store)
    found = load_stored_run(source, "base")
    source.close()
    assert found is not None
    manifest = dict(found[0], samples={"path": "base.samples.jsonl"})
    from pytest_themis.comparison.samples import write_jsonl

    write_jsonl(found[1], tmp_path / "base.samples.jsonl")
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.chdir(tmp_path)
    code, out, _ = _run(capsys, "show", "manifest.json")
    assert code == 0 and "run base" in out and "240 samples" in out
    assert not (tmp_path / ".themis_cache").exists()


def test_python_dash_m_runs_the_command(two_runs: Any) -> None:
    store, _, _ = two_runs
    done = subprocess.run(
        [sys.executable, "-m", "pytest_themis", "runs", "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "base" in done.stdout and "new" in done.stdout


@pytest.fixture(params=["postgresql", "s3"])
def remote_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A URL of a real PostgreSQL table or of an S3 prefix on a moto server."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    return f"s3://{bucket}/themis"


def test_every_subcommand_on_a_remote_store(
    two_runs: Any, remote_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pg_url = remote_url
    folder, _, _ = two_runs
    copy_runs(folder, pg_url)
    code, out, _ = _run(capsys, "runs", "--store", pg_url)
    assert code == 0 and {line.split()[0] for line in out.splitlines()[1:]} == {"base", "new"}
    assert _run(capsys, "show", "new", "--store", pg_url)[0] == 0
    assert _run(capsys, "compare", "base", "new", "--store", pg_url)[0] == 1
    html = tmp_path / "pg.html"
    assert _run(capsys, "report", "new", "-o", str(html), "--store", pg_url)[0] == 0
    code, out, _ = _run(capsys, "export", "new", "--store", pg_url)
    assert code == 0 and len(out.splitlines()) == 240
    assert "password" not in html.read_text()
