"""Bad PostgreSQL input: one-line errors naming the fix, raised before any request is sent."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from support.pg_server import DATABASE, PASSWORD, PASSWORD_USER
from support.services import free_port

from pytest_themis import evaluate
from pytest_themis.errors import ConfigurationError

pytestmark = pytest.mark.timeout(120)

ROWS = [{"id": "r1", "q": "2+2", "a": "4"}, {"id": "r2", "q": "3*5", "a": "15"}]


def _evaluate_with(storage: Any) -> tuple[list[str], BaseException]:
    """Run evaluate() on a recording model; return the prompts it got and the error raised."""
    prompts: list[str] = []

    def model(prompt: str) -> str:
        prompts.append(prompt)
        return "4"

    with pytest.raises(ConfigurationError) as info:
        evaluate(
            dataset=ROWS,
            prompt="{q}",
            reference_field="a",
            metrics=["exact_match"],
            model=model,
            storage=storage,
        )
    return prompts, info.value


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text, text
    return text


@pytest.fixture
def bad_urls(pg_server: Any) -> dict[str, str]:
    port = pg_server.port
    return {
        "wrong password": pg_server.url(user=PASSWORD_USER, password="not-" + PASSWORD),
        "missing database": pg_server.url(database="no_such_db"),
        "unreachable": f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/{DATABASE}",
        "bad port": f"postgresql://postgres:{PASSWORD}@127.0.0.1:notaport/{DATABASE}",
        "bad parameter": f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}?nosuch=1",
        "bad table": f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}?table=drop;table",
    }


@pytest.mark.parametrize(
    "case, expected",
    [
        ("wrong password", r"rejected the password of user 'themis_pw'; fix the user/password"),
        ("missing database", r"database 'no_such_db' does not exist; create it"),
        ("unreachable", r"cannot reach PostgreSQL at .*connection refused.*start the server"),
        ("bad port", r"bad PostgreSQL URL .*expected postgresql://"),
        ("bad parameter", r"bad PostgreSQL URL .*nosuch"),
        ("bad table", r"table name 'drop;table' is not a plain identifier"),
    ],
)
def test_bad_postgres_input_is_one_line_before_any_request(
    bad_urls: dict[str, str], case: str, expected: str
) -> None:
    prompts, exc = _evaluate_with(bad_urls[case])
    message = _one_line(exc)
    assert prompts == []
    assert PASSWORD not in message
    assert re.search(expected, message), message


def test_an_instance_is_opened_before_any_request(bad_urls: dict[str, str]) -> None:
    from pytest_themis.storage.postgres import PostgresStorage

    store = PostgresStorage(bad_urls["wrong password"])  # constructing it does not connect
    prompts, exc = _evaluate_with(store)
    assert prompts == []
    assert "rejected the password" in _one_line(exc)


def test_unknown_scheme_lists_the_supported_ones() -> None:
    prompts, exc = _evaluate_with("redis://user:pw@localhost:6379/0")
    message = _one_line(exc)
    assert prompts == []
    assert "unsupported storage URL scheme 'redis://'" in message
    assert "postgresql://" in message and "s3://" in message and "folder" in message
    assert "user:***@" in message


MISSING_PSYCOPG = """
import sys
sys.modules["psycopg"] = None  # as if the extra were not installed
from pytest_themis.errors import ConfigurationError
from pytest_themis.storage.postgres import PostgresStorage
from pytest_themis.storage import open_storage
for attempt in (lambda: open_storage(sys.argv[1]), lambda: PostgresStorage(sys.argv[1])):
    try:
        attempt()
    except ConfigurationError as exc:
        print(exc)
"""


def test_missing_psycopg_names_the_pip_line(tmp_path: Any) -> None:
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/{DATABASE}"
    result = subprocess.run(
        [sys.executable, "-c", MISSING_PSYCOPG, url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and len(lines) == 2, result.stdout + result.stderr
    for line in lines:
        assert 'pip install "pytest-themis[postgres]"' in line
        assert PASSWORD not in line


def test_flag_with_missing_psycopg_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    script = textwrap.dedent(
        """
        import sys
        sys.modules["psycopg"] = None
        import pytest
        sys.exit(pytest.main(sys.argv[1:]))
        """
    )
    result = pytester.run(
        sys.executable,
        "-c",
        script,
        "-p",
        "no:cacheprovider",
        "--themis-preset=demo",
        "--themis-storage=postgresql://u:pw@127.0.0.1:1/db",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ['*--themis-storage*needs the postgres extra*pip install "pytest-themis[[]postgres[]]"*']
    )
    assert "pw@" not in result.stderr.str()


@pytest.mark.slow
def test_pytest_door_wrong_password_is_a_one_line_usage_error(
    pg_server: Any, pytester: pytest.Pytester
) -> None:
    url = pg_server.url(user=PASSWORD_USER, password="wrong-" + PASSWORD)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--themis-preset=demo", f"--themis-storage={url}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # found at collection, before any request
    result.stderr.fnmatch_lines(
        ["ERROR: themis storage: PostgreSQL at postgresql://themis_pw:***@*rejected the password*"]
    )
    output = result.stdout.str() + result.stderr.str()
    assert "wrong-" + PASSWORD not in output
    assert "Traceback" not in output and "psycopg" not in output
