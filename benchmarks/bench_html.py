"""HTML report of 10,000 samples: file size and time to interactive in headless chromium.

Builds a synthetic run (4 cells × 2,500 rows, realistic prompt/response lengths), writes the
report, loads it in Debian's chromium and reads the time from navigation start until the page
marks itself ready (its table rendered and its handlers attached). Targets: ≤ 15 MB, ≤ 2 s.

    python benchmarks/bench_html.py [--samples 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pytest_themis.report.html import write_html
from pytest_themis.testing.browser import available, chromium, wait_for

CELLS = ("a-prompt0-t0", "a-prompt1-t0", "b-prompt0-t0", "b-prompt1-t0")


def synthetic_run(samples: int) -> tuple[dict, list[dict]]:
    per_cell = samples // len(CELLS)
    rows = []
    for cell_index, cell in enumerate(CELLS):
        for i in range(per_cell):
            right = (i * 7 + cell_index) % 10 < 7
            answer = str(4 * i)
            rows.append(
                {
                    "run_id": "bench",
                    "experiment": "bench",
                    "cell_id": cell,
                    "row_id": f"r{i}",
                    "epoch": 0,
                    "prompt": [
                        {"role": "user", "content": f"Solve step by step: what is {i} + {3 * i}?"}
                    ],
                    "response": f"We add {i} and {3 * i}. " * 6 + f"The answer is {answer}.",
                    "extracted": answer if right else str(4 * i + 1),
                    "reference": answer,
                    "scores": {"ExactMatch": 1.0 if right else 0.0},
                    "error": None if i % 97 else "timeout",
                    "cached": False,
                    "tokens": {"prompt": 20, "completion": 60},
                    "latency": 0.5,
                }
            )
    cells = [
        {
            "experiment": "bench",
            "cell_id": cell,
            "model": {"provider": "fake", "identifier": cell[0]},
            "metrics": {
                "ExactMatch": {"mean": 0.7, "ci_low": 0.68, "ci_high": 0.72, "count": per_cell}
            },
        }
        for cell in CELLS
    ]
    return {"run_id": "bench", "cells": cells, "datasets": []}, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not available():
        print("chromium/chromedriver/selenium missing: apt-get install chromium chromium-driver")
        return 2
    manifest, rows = synthetic_run(args.samples)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.html"
        started = time.perf_counter()
        write_html(path, manifest, rows)
        write_s = time.perf_counter() - started
        size_mb = path.stat().st_size / 1e6
        timings = []
        with chromium() as driver:
            for _ in range(args.repeat):
                driver.get("about:blank")
                driver.get(path.as_uri())
                wait_for(lambda: driver.execute_script("return document.body.dataset.ready==='1'"))
                # ms from navigation start until the page marked itself ready
                ready_ms = driver.execute_script("return document.body.dataset.readyMs")
                timings.append(float(ready_ms) / 1000)
                # the filter over every sample, as a person would use it
                t0 = time.perf_counter()
                driver.execute_script(
                    "var f=document.getElementById('filter');f.value='wrong';"
                    "f.dispatchEvent(new Event('change'));"
                )
                filter_s = time.perf_counter() - t0
    tti = statistics.median(timings)
    print(f"uptime: {os.popen('uptime').read().strip()}")
    print(f"samples {len(rows)}: file {size_mb:.2f} MB (target <= 15), written in {write_s:.2f} s")
    print(
        f"time to interactive: median {tti:.2f} s over {len(timings)} loads "
        f"({', '.join(f'{t:.2f}' for t in timings)}; target <= 2), 'wrong' filter {filter_s:.2f} s"
    )
    return 0 if size_mb <= 15 and tti <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
