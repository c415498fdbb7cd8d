"""T8 xdist: four latency-bound cells, ``pytest -n 2`` wall vs ``pytest -n 0`` wall.

A themis marker test sweeps 2 models x 2 prompts (4 cells) of N rows each through litellm against
the mock server (fixed latency, its own process), with a fixed concurrency per cell, so each
cell takes about ceil(N/C) x latency. Both runs use a cold cache. Target: -n 2 <= 0.6 x -n 0.

    python benchmarks/bench_xdist.py [--rows 80] [--latency 1.0] [--parallel 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
from pathlib import Path

from _harness import PYTEST, mock_server, run_timed

TEST_FILE = """
import pytest

ROWS = [{{"id": i, "q": f"Question {{i}}: what is {{i}} + {{i}}?", "gold": str(2 * i)}}
        for i in range({rows})]


@pytest.mark.themis(dataset=ROWS, prompts={{"plain": "{{q}}", "cot": "Think. {{q}}"}},
                    models=["openai/model-a", "openai/model-b"], reference_field="gold",
                    metrics=["contains"])
def test_cells(themis_report):
    assert themis_report.errors == 0
"""


def run(workers: int, rows: int, parallel: int, url: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "test_cells.py").write_text(textwrap.dedent(TEST_FILE.format(rows=rows)))
        cmd = [
            *PYTEST,
            "-n",
            str(workers),
            f"--themis-api-base={url}",
            f"--themis-max-parallel={parallel}",
            f"--themis-cache-dir={Path(tmp) / 'cache'}",
            "test_cells.py",
        ]
        wall, done = run_timed(cmd, cwd=Path(tmp))
        if done.returncode != 0 or "4 passed" not in done.stdout:
            raise SystemExit(f"-n {workers} run failed:\n{done.stdout[-3000:]}")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=80)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    with mock_server(args.latency) as url:
        serial = run(0, args.rows, args.parallel, url)
        spread = run(2, args.rows, args.parallel, url)
    ratio = spread / serial
    print(
        f"T8: 4 cells x {args.rows} rows, {args.parallel} in flight per cell, "
        f"latency {args.latency}s"
    )
    print(
        f"  -n 0 wall {serial:.2f} s, -n 2 wall {spread:.2f} s, ratio {ratio:.3f} "
        f"(target <= 0.60) {'PASS' if ratio <= 0.6 else 'FAIL'}"
    )
    return 0 if ratio <= 0.6 else 1


if __name__ == "__main__":
    sys.exit(main())
