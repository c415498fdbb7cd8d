"""The four seed-level examples run offline and print the documented report shapes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from support.dask_cluster import require_distributed
from support.pg_server import pg_server, pg_url  # noqa: F401

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(name: str, cwd: Path) -> str:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_level1_evaluate_on_demo(tmp_path):
    out = _run("level1_evaluate.py", tmp_path)
    match = re.search(
        r"demo / fake:fake-math-llm: (\d\.\d+) \[95% CI (\d\.\d+)-(\d\.\d+)\] n=50", out
    )
    assert match, out
    mean, low, high = map(float, match.groups())
    assert 0.5 < mean < 1.0 and low < mean < high
    assert "records: 50  errors: 0" in out
    assert (tmp_path / ".themis_cache").is_dir()  # default storage: a folder in the working dir


def test_level2_custom_dataset_pipeline_and_python_model(tmp_path):
    out = _run("level2_custom_components.py", tmp_path)
    assert "ExactMatch: 1.000 (n=6)" in out
    assert "MissedCriticalRate: 0.000 (n=6)" in out


def _check_level3(out: str, store: str) -> None:
    runs = re.findall(
        r"(first run|rerun): accuracy (\d\.\d+), generated (\d+), cached (\d+) "
        r"\(engine (\w+), store (\w+)\)",
        out,
    )
    assert [r[0] for r in runs] == ["first run", "rerun"], out
    (_, acc1, gen1, cached1, engine, name), (_, acc2, gen2, cached2, _, _) = runs
    assert (int(gen1), int(cached1)) == (50, 0)
    assert (int(gen2), int(cached2)) == (0, 50)  # the rerun made no calls
    assert acc1 == acc2 and engine == "dask" and name == store


def test_level3_dask_backend_and_folder_store_cache_the_rerun(tmp_path, monkeypatch):
    require_distributed()  # the example runs on a local Dask cluster: the [dask] extra
    monkeypatch.delenv("THEMIS_EXAMPLE_PG_URL", raising=False)
    _check_level3(_run("level3_backends.py", tmp_path), "ExperimentStorage")


def test_level3_dask_backend_and_postgres_store(tmp_path, monkeypatch, pg_url):  # noqa: F811
    require_distributed()
    monkeypatch.setenv("THEMIS_EXAMPLE_PG_URL", pg_url)
    _check_level3(_run("level3_backends.py", tmp_path), "PostgresStorage")


def test_level4_manual_assembly_sweep(tmp_path):
    out = _run("level4_manual_assembly.py", tmp_path)
    assert "Total evaluations executed: 24" in out  # 3 rows x 2 models x 2 prompts x 2 sampling
    assert len(re.findall(r"ExactMatch=\d\.\d\d", out)) == 8
    assert "fake-oracle-zero_shot-t0-m256 " in out  # max_tokens=256 is part of the id
