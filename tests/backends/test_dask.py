"""DaskExecutionBackend without a cluster: naming, usage errors raised before any request."""

from __future__ import annotations

import subprocess
import sys

import pytest
from support.dask_cluster import require_distributed
from support.services import free_port

from pytest_themis import evaluate
from pytest_themis.backends import resolve_execution_backend
from pytest_themis.backends.dask import DaskExecutionBackend, scheduler_address
from pytest_themis.errors import ConfigurationError

ROWS = [{"id": i, "q": f"What is {i}+{i}?", "a": str(2 * i)} for i in range(4)]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("tcp://10.0.0.5:8786", "tcp://10.0.0.5:8786"),
        ("tls://sched.example:9000", "tls://sched.example:9000"),
        ("dask://127.0.0.1:8786", "tcp://127.0.0.1:8786"),
        ("127.0.0.1:9999", "tcp://127.0.0.1:9999"),
        ("dask://scheduler", "tcp://scheduler:8786"),
    ],
)
def test_scheduler_address_forms(given: str, expected: str) -> None:
    assert scheduler_address(given) == expected


@pytest.mark.parametrize("bad", ["dask://", "dask://host:port", "http://host:8786", ":8786"])
def test_bad_scheduler_address_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="Dask scheduler address"):
        DaskExecutionBackend(bad)


def test_resolver_names_a_dask_scheduler() -> None:
    backend = resolve_execution_backend("dask://127.0.0.1:8786")
    assert isinstance(backend, DaskExecutionBackend)
    assert backend.address == "tcp://127.0.0.1:8786"
    assert backend.describe()["engine"] == "dask"


def test_address_and_client_together_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        DaskExecutionBackend("tcp://127.0.0.1:8786", client=object())


def _counting_model(calls: list[str]) -> object:
    def model(prompt: str) -> str:
        calls.append(prompt)
        return prompt

    return model


def test_unreachable_scheduler_fails_before_any_request() -> None:
    require_distributed()  # skips locally, fails in CI
    address = f"dask://127.0.0.1:{free_port()}"
    calls: list[str] = []
    backend = DaskExecutionBackend(address, connect_timeout=1)
    with pytest.raises(ConfigurationError) as info:
        evaluate(
            dataset=ROWS,
            model=_counting_model(calls),
            prompt="{q}",
            reference_field="a",
            metrics=["exact_match"],
            storage=None,
            execution_backend=backend,
        )
    message = str(info.value)
    assert "\n" not in message
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:" in message
    assert "dask scheduler" in message  # names the fix
    assert calls == []


def test_missing_dask_names_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes `import distributed` fail
    calls: list[str] = []
    with pytest.raises(ConfigurationError, match=r'pip install "pytest-themis\[dask\]"'):
        evaluate(
            dataset=ROWS,
            model=_counting_model(calls),
            prompt="{q}",
            reference_field="a",
            metrics=["exact_match"],
            storage=None,
            execution_backend=DaskExecutionBackend("tcp://127.0.0.1:8786"),
        )
    assert calls == []


def test_naming_the_backend_imports_no_dask() -> None:
    code = (
        "import sys\n"
        "from pytest_themis.backends import resolve_execution_backend\n"
        "resolve_execution_backend('dask://127.0.0.1:8786').describe()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
