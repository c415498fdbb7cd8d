"""Naming a store: open_storage(), redact_url() and the --themis-storage flag / ini key."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.services import service_missing

from pytest_themis.errors import ConfigurationError
from pytest_themis.storage import ExperimentStorage, open_storage
from pytest_themis.storage.urls import check_storage_spec, redact_url

pytestmark = pytest.mark.timeout(120)

HAS_PSYCOPG = importlib.util.find_spec("psycopg") is not None


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql://alice:pw@db:5432/evals", "postgresql://alice:***@db:5432/evals"),
        ("postgres://alice:p%40ss@db/evals?table=t", "postgres://alice:***@db/evals?table=t"),
        ("postgresql://alice:p@ss@db/evals", "postgresql://alice:***@db/evals"),
        ("postgresql://alice@db/evals", "postgresql://alice@db/evals"),
        ("postgresql://db/x?password=hunter2&sslmode=require", "postgresql://db/x?password=***&sslmode=require"),
        ("s3://bucket/prefix?aws_secret_access_key=abc&x=1", "s3://bucket/prefix?aws_secret_access_key=***&x=1"),
        ("/plain/folder", "/plain/folder"),
    ],
)  # fmt: skip
def test_redact_url_hides_passwords(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_folders_and_instances(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = open_storage(str(tmp_path / "a"))
    assert isinstance(folder, ExperimentStorage) and folder.path == tmp_path / "a"
    assert open_storage(tmp_path / "b").path == tmp_path / "b"  # type: ignore[attr-defined]
    monkeypatch.setenv("HOME", str(tmp_path))
    assert open_storage("~/c").path == tmp_path / "c"  # type: ignore[attr-defined]
    monkeypatch.chdir(tmp_path)
    default = open_storage(None)
    assert isinstance(default, ExperimentStorage) and default.path == Path(".themis_cache")
    assert open_storage(folder) is folder
    folder.set("k", {"v": 1})
    again = open_storage(str(tmp_path / "a"))
    assert again.get("k") == {"v": 1}
    again.close()
    folder.close()


@pytest.mark.parametrize(
    "spec, message",
    [
        ("redis://u:secret@host:6379/0", r"unsupported storage URL scheme 'redis://' in redis://u:\*\*\*@host"),
        ("  ", r"empty storage name; use postgresql://"),
        ("s3:///prefix", r"names no bucket"),
    ],
)  # fmt: skip
def test_bad_specs_name_what_is_supported(spec: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        open_storage(spec)
    assert "secret" not in str(info.value)


def test_not_a_store_at_all() -> None:
    with pytest.raises(ConfigurationError, match="storage must be a URL, a folder path or a"):
        open_storage(42)  # type: ignore[arg-type]


def test_postgres_urls_resolve_without_connecting() -> None:
    if not HAS_PSYCOPG:
        service_missing("psycopg (the postgres extra)", 'pip install -e ".[postgres]"')
    from pytest_themis.storage.postgres import PostgresStorage

    for scheme in ("postgresql", "postgres"):
        store = open_storage(f"{scheme}://u:pw@127.0.0.1:1/db?table=evals", connect=False)
        assert isinstance(store, PostgresStorage)
        assert (store.table, store.url) == ("evals", f"{scheme}://u:***@127.0.0.1:1/db")
    with pytest.raises(ConfigurationError, match="cannot reach PostgreSQL"):
        open_storage("postgresql://u:pw@127.0.0.1:1/db")  # connect=True opens it now


def test_s3_urls_resolve_to_s3storage_or_name_the_extra() -> None:
    if importlib.util.find_spec("boto3") is None:
        with pytest.raises(ConfigurationError, match=r'pip install "pytest-themis\[s3\]"'):
            open_storage("s3://bucket/prefix", connect=False)
    else:
        store = open_storage("s3://bucket/prefix", connect=False)
        assert type(store).__name__ == "S3Storage"
        assert type(store).__module__ == "pytest_themis.storage.s3"


def test_check_storage_spec_does_not_touch_the_network() -> None:
    # an unreachable host is fine here: only the name is checked
    if HAS_PSYCOPG:
        assert (
            check_storage_spec(" postgresql://u@10.255.255.1/db ")
            == "postgresql://u@10.255.255.1/db"
        )
    assert check_storage_spec("relative/folder") == "relative/folder"


# -- the pytest flag and ini key ----------------------------------------------------------------


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--themis-limit=3", *args)


def test_flag_rejects_an_unknown_scheme(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--themis-preset=demo", "--themis-storage=redis://u:pw@h/0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--themis-storage: unsupported storage URL scheme 'redis://' in redis://u:***@h/0*"]
    )


def test_flag_and_cache_dir_together_are_a_usage_error(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester, "--themis-preset=demo", "--themis-storage=store", "--themis-cache-dir=cache"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--themis-storage and --themis-cache-dir are both set*"])


@pytest.mark.slow
def test_folder_via_flag_and_via_ini(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--themis-preset=demo", "--themis-storage=by_flag")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "by_flag" / "cache.db").exists()

    sub = pytester.mkdir("project")
    (sub / "pytest.ini").write_text("[pytest]\nthemis_storage = by_ini\n")
    os.chdir(sub)
    result = _run(pytester, "--themis-preset=demo")
    result.assert_outcomes(passed=1)
    assert (sub / "by_ini" / "cache.db").exists()
    # a command-line cache dir overrides the ini store
    result = _run(pytester, "--themis-preset=demo", f"--themis-cache-dir={pytester.path / 'cli'}")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "cli" / "cache.db").exists()


def test_folder_runs_import_no_optional_store_library(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from pytest_themis import evaluate\n"
        "evaluate(dataset=[{'id': 'a', 'q': '2+2', 'r': '4'}], prompt='{q}', reference_field='r',"
        " metrics=['exact_match'], model='fake:fake-math-llm', storage=sys.argv[1])\n"
        "print([m for m in ('psycopg', 'boto3', 'botocore', 's3fs') if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "store")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert (tmp_path / "store" / "cache.db").exists()
