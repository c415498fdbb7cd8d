"""Benchmark: compare two runs of 100,000 paired samples in 10 cells, bootstrap included.

Each cell has ``--rows`` rows × ``--epochs`` epochs (default 2,000 × 5, so 10,000 pairs per cell)
and two metrics: a 0/1 accuracy and a continuous score in [0, 1]. With epochs > 1 both go through
the cluster bootstrap (10,000 resamples each); with ``--epochs 1`` the 0/1 metric uses exact
McNemar and only the continuous one is bootstrapped. Wall time covers ``compare_runs`` only
(pairing, statistics, Holm, verdicts); the best of ``--repeat`` runs counts. The process CPU
time is printed too: numpy runs this single-threaded, so on a shared machine it is the figure
that stays comparable (wall time then includes waiting for a core).

Run: ``python benchmarks/bench_compare.py`` (also ``--epochs 1 --rows 10000``).
"""

from __future__ import annotations

import argparse
import os
import random
import time
from typing import Any

from pytest_themis.comparison import compare_runs
from pytest_themis.comparison.compare import RunData

TARGET_SECONDS = 2.0
CELLS = 10


def make_run(run_id: str, rows: int, epochs: int, flip: float, seed: int) -> RunData:
    """A run whose accuracy drops by about ``flip`` against the seed-0 run's answers."""
    rng = random.Random(seed)
    base = random.Random(0)
    cells: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    for c in range(CELLS):
        cell_id = f"model{c}-prompt-t0.7"
        cells.append(
            {
                "experiment": "bench",
                "cell_id": cell_id,
                "model": {"provider": "fake", "identifier": f"model{c}"},
                "template": "prompt",
                "sampling": {"temperature": 0.7},
                "dataset": "d" * 64,
                "pipeline": "p" * 64,
            }
        )
        for r in range(rows):
            for e in range(epochs):
                right = base.random() < 0.7
                score = base.random()
                if flip and right and rng.random() < flip:
                    right = False
                samples.append(
                    {
                        "experiment": "bench",
                        "cell_id": cell_id,
                        "row_id": f"r{r}",
                        "epoch": e,
                        "template_hash": "t",
                        "error": None,
                        "scores": {
                            "Accuracy": 1.0 if right else 0.0,
                            "Score": min(1.0, max(0.0, score - flip * rng.random())),
                        },
                    }
                )
    return RunData(run_id, {"cells": cells}, samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    baseline = make_run("base", args.rows, args.epochs, 0.0, 1)
    new = make_run("new", args.rows, args.epochs, 0.02, 2)
    best = best_cpu = float("inf")
    for _ in range(args.repeat):
        start, cpu = time.perf_counter(), time.process_time()
        comparison = compare_runs(new, baseline)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    pairs = sum(c.paired for c in comparison.cells)
    methods = sorted({m.method for c in comparison.cells for m in c.metrics.values()})
    verdicts = sorted({c.verdict for c in comparison.cells})
    load = os.getloadavg()[0]
    print(
        f"compare_runs: {pairs} paired samples in {len(comparison.cells)} cells "
        f"({args.rows} rows x {args.epochs} epochs), methods {', '.join(methods)}: "
        f"best wall {best:.3f}s, best CPU {best_cpu:.3f}s of {args.repeat} "
        f"(target <= {TARGET_SECONDS}s); "
        f"verdicts {', '.join(verdicts)}; load average {load:.2f}"
    )


if __name__ == "__main__":
    main()
