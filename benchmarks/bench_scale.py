"""T6 scale: 100,000 rows through the fake provider in one cell.

Targets: peak RSS <= 500 MB and time(100k) / time(10k) <= 11. Each size runs in a fresh process
(cold cache folder) so RSS and time are those of a real run, and the 10k run is the baseline
measured in the same invocation.

    python benchmarks/bench_scale.py [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from _harness import run_child

CHILD = r"""
import json, resource, sys, time
n, cache = int(sys.argv[1]), sys.argv[2]
from pytest_themis import evaluate
rows = ({"id": f"q{i}", "question": f"What is {i}+{i % 97}?", "answer": str(i + i % 97)}
        for i in range(n))
start = time.perf_counter()
report = evaluate(dataset=list(rows), model="fake:fake-oracle", prompt="{question}",
                  reference_field="answer", metrics=["exact_match"], storage=cache,
                  max_parallel=64)
elapsed = time.perf_counter() - start
agg = report.metric("ExactMatch")
print(json.dumps({"n": n, "seconds": elapsed, "count": agg.count, "mean": agg.mean,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as cache:
        return run_child(CHILD, n, cache)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 100_000])
    args = parser.parse_args()
    small, large = (run(n) for n in args.sizes)
    ratio = large["seconds"] / small["seconds"]
    for r in (small, large):
        print(
            f"n={r['n']:>7}: {r['seconds']:.2f} s  {r['n'] / r['seconds']:.0f} rows/s  "
            f"peak RSS {r['peak_rss_mb']:.0f} MB  accuracy {r['mean']:.3f} (n={r['count']})"
        )
    scale = args.sizes[1] / args.sizes[0]
    print(
        f"T6 time ratio {ratio:.2f} (target <= {scale * 1.1:.1f}); "
        f"peak RSS {large['peak_rss_mb']:.0f} MB (target <= 500)"
    )
    ok = ratio <= scale * 1.1 and large["peak_rss_mb"] <= 500
    print("T6", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
