"""The three doors on each engine: evaluate(), a Level 4 orchestrator sweep and the pytest flags,
on a Ray head node (``ray start --head``) and a Dask scheduler + workers started as subprocesses
and joined by address, with PostgreSQL and S3 stores; the same scores on every engine;
a store filled on one engine serves another with no request; an unreachable engine address or a
missing extra is one usage-error line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.dask_cluster import require_distributed, subprocess_cluster
from support.pg_server import pg_server, pg_url  # noqa: F401
from support.ray_cluster import import_ray, ray_head
from support.s3_server import s3_bucket, s3_env, s3_server  # noqa: F401
from support.services import free_port
from support.sweeps import SWEEP_RECORDS, level4_sweep, per_sample

from pytest_themis import evaluate
from pytest_themis.testing.openai_server import OpenAIServer

pytestmark = pytest.mark.timeout(600)

ENGINES = ("ray", "dask")


@pytest.fixture(scope="module")
def ray_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``ray start --head --num-cpus 2`` as a subprocess, as ``--themis-backend`` names it.

    Ray's token authentication is off for the head and every driver joining it (this process and
    the pytest subprocesses inherit the variable): a ``ray start`` head enables it when a token
    file exists in the home folder, which a driver joining by address does not pick up.
    """
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    try:
        with ray_head(tmp_path_factory.mktemp("ray")) as address:
            yield f"ray:{address}"
    finally:
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


@pytest.fixture(scope="module")
def dask_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``dask scheduler`` + two ``dask worker`` subprocesses, as ``dask://host:port``."""
    with subprocess_cluster(tmp_path_factory.mktemp("dask"), n_workers=2) as cluster:
        yield "dask://" + cluster.address.removeprefix("tcp://")


@pytest.fixture
def engines(request: pytest.FixtureRequest) -> dict[str, str]:
    """The engine names of the running clusters (started on first use, shared by the module)."""

    class _Lazy(dict[str, str]):
        def __missing__(self, name: str) -> str:
            self[name] = request.getfixturevalue(f"{name}_address")
            return self[name]

    return _Lazy()


@pytest.fixture
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A PostgreSQL URL or an ``s3://`` URL on the servers the support helpers start (the S3
    endpoint in ``AWS_ENDPOINT_URL``, which a pytest subprocess inherits)."""
    kind = request.param
    if kind == "pg":
        return str(request.getfixturevalue("pg_url"))
    bucket = request.getfixturevalue("s3_bucket")
    monkeypatch.setenv("AWS_ENDPOINT_URL", request.getfixturevalue("s3_server").endpoint)
    return f"s3://{bucket}/{request.node.name[:40].replace('[', '_').replace(']', '')}"


# -- door 1: evaluate(); a second run on the other engine makes no request ------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("first", "second", "store"),
    [("ray", "dask", "pg"), ("dask", "ray", "s3")],
    indirect=["store"],
)
def test_evaluate_on_an_engine_then_the_other_engine_reads_the_shared_store(
    engines: dict[str, str], first: str, second: str, store: str
) -> None:
    with OpenAIServer() as server:
        runs = []
        for engine in (first, second):
            before = server.request_count
            report = evaluate(
                "demo",
                model="openai/doors-model",
                api_base=server.url,
                limit=24,
                max_parallel=6,
                execution_backend=engines[engine],
                storage=store,
            )
            runs.append((report, server.request_count - before))
    (one, sent_one), (two, sent_two) = runs
    assert len(one.records) == len(two.records) == 24
    assert sent_one >= 24 and sent_two == 0  # the second engine found every record stored
    assert all(r.generation.cached for r in two.records)
    assert per_sample(one) == per_sample(two)
    runner = two.manifest["settings"]["runner"]["execution_backend"]
    assert runner["engine"] == second


# -- door 2: a Level 4 ExperimentOrchestrator sweep -----------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_level4_sweep_on_an_engine(engines: dict[str, str], engine: str, pg_url: str) -> None:  # noqa: F811
    from pytest_themis.backends import resolve_execution_backend

    backend = resolve_execution_backend(engines[engine])
    try:
        remote = level4_sweep(pg_url, backend)
    finally:
        backend.shutdown()
    local = level4_sweep()
    assert len(remote.records) == SWEEP_RECORDS
    assert sum(r.generation.cached for r in remote.records) == 0
    assert per_sample(remote) == per_sample(local)
    assert remote.manifest["settings"]["runner"]["execution_backend"]["engine"] == engine


# -- door 3: pytest --themis-preset --themis-backend --themis-storage ----------------------


@pytest.mark.slow
@pytest.mark.parametrize(("engine", "store"), [("dask", "pg"), ("ray", "s3")], indirect=["store"])
def test_pytest_flags_run_the_preset_on_an_engine_and_a_store(
    pytester: pytest.Pytester, engines: dict[str, str], engine: str, store: str
) -> None:
    manifest = pytester.path / "manifest.json"
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--themis-preset=demo",
        "--themis-limit=12",
        f"--themis-backend={engines[engine]}",
        f"--themis-storage={store}",
        f"--themis-manifest={manifest}",
        timeout=300,
    )
    assert result.ret == 0, result.stdout.str()[-3000:] + result.stderr.str()[-2000:]
    result.assert_outcomes(passed=1)
    settings = json.loads(manifest.read_text())["settings"]
    assert settings["runner"]["execution_backend"]["engine"] == engine
    assert settings["cache"]["name"] == (
        "PostgresStorage" if store.startswith("post") else "S3Storage"
    )
    assert not (pytester.path / ".themis_cache" / "cache.db").exists()


# -- equality: the same run on local, Ray and Dask -------------------------------------------------


@pytest.mark.slow
def test_local_ray_and_dask_give_identical_per_sample_scores(engines: dict[str, str]) -> None:
    rows = [{"id": f"r{i}", "q": f"What is {i}+{i % 9}?", "a": str(i + i % 9)} for i in range(200)]
    grid: dict[str, Any] = dict(
        dataset=rows,
        model=["fake:fake-math-a", "fake:fake-math-b"],
        prompt=["{q}", "Answer briefly. {q}"],
        reference_field="a",
        metrics=["exact_match"],
        storage=None,
        max_parallel=32,
    )
    scores = {
        name: per_sample(evaluate(execution_backend=backend, **grid))
        for name, backend in (
            ("local", "local"),
            ("ray", engines["ray"]),
            ("dask", engines["dask"]),
        )
    }
    assert len(scores["local"]) == 2 * 2 * 200
    assert scores["ray"] == scores["local"]
    assert scores["dask"] == scores["local"]
    values = [s["ExactMatch"] for s in scores["local"].values()]
    assert 0 < sum(values) < len(values)  # the fake models are right on some rows, not all


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scheme", [pytest.param("dask://", marks=pytest.mark.slow), "ray:"]
)  # Dask gives up on a refused address after its connect timeout
def test_unreachable_engine_address_is_one_usage_error_line(
    pytester: pytest.Pytester, scheme: str
) -> None:
    if scheme == "ray:":  # skip locally, fail in CI
        import_ray()
    else:
        require_distributed()
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--themis-preset=demo",
        "--themis-model=fake:fake-math-llm",
        f"--themis-backend={scheme}{address}",
        f"--themis-cache-dir={pytester.path / 'cache'}",
        timeout=120,
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1, result.stderr.str()
    assert errors[0].startswith("ERROR: --themis-backend") and address in errors[0]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_missing_extra_is_one_usage_error_line_naming_the_install(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "ray").mkdir()
    (blocker / "ray" / "__init__.py").write_text("raise ImportError('ray is not installed')\n")
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])
    )
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--themis-preset=demo",
        "--themis-model=fake:fake-math-llm",
        "--themis-backend=ray",
        timeout=120,
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1 and 'pip install "pytest-themis[ray]"' in errors[0], errors
