"""The four seed-level examples run offline and print the documented report shapes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

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


def test_level3_custom_backends_cache_the_rerun(tmp_path):
    out = _run("level3_backends.py", tmp_path)
    first, rerun = re.findall(r"provider calls so far (\d+), stored entries (\d+)", out)
    assert int(first[0]) == 50 and int(rerun[0]) == 50  # the rerun made no calls
    assert int(first[1]) >= 50


def test_level4_manual_assembly_sweep(tmp_path):
    out = _run("level4_manual_assembly.py", tmp_path)
    assert "Total evaluations executed: 24" in out  # 3 rows x 2 models x 2 prompts x 2 sampling
    assert len(re.findall(r"ExactMatch=\d\.\d\d", out)) == 8
    assert "fake-oracle-zero_shot-t0-m256 " in out  # max_tokens=256 is part of the id
