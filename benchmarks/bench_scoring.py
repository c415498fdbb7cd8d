"""Benchmark T7: score 500 MATH-style (prediction, gold) pairs with MathVerifyAccuracy.

Wall time includes starting the worker pool. Run: ``python benchmarks/bench_scoring.py``
(``--repeat 3`` on a shared machine: each run starts a fresh pool and the best run counts).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time

from pytest_themis.core.entities import MetricScore
from pytest_themis.evaluation.metrics.math_verify import MathVerifyAccuracy

TARGET_SECONDS = 3.0


# Answer kinds per 20 items, roughly the MATH-500 mix: mostly integers, then fractions and
# surds, a few intervals and symbolic expressions; about 10% of predictions are wrong.
_MIX = ["int"] * 9 + ["frac"] * 4 + ["sqrt"] * 3 + ["interval", "expr", "decimal", "pi"]


def make_pairs(n: int, seed: int = 7) -> tuple[list[tuple[str, str]], list[float]]:
    """``n`` (prediction, gold) pairs and the verdict each should get."""
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    expected: list[float] = []
    for i in range(n):
        kind = _MIX[i % len(_MIX)]
        a, b = rng.randint(1, 40), rng.randint(2, 40)
        if kind == "int":
            gold = str(a * 137 + b)
            pred = f"{a * 137 + b:,}" if i % 3 == 0 else f"\\boxed{{{a * 137 + b}}}"
        elif kind == "frac":
            gold, pred = f"\\frac{{{a}}}{{{b}}}", f"\\dfrac{{{a * 2}}}{{{b * 2}}}"
        elif kind == "sqrt":
            gold, pred = f"{a}\\sqrt{{{b}}}", f"\\sqrt{{{b}}} \\cdot {a}"
        elif kind == "interval":
            gold, pred = f"({a}, {a + b}]", f"\\left({a},{a + b}\\right]"
        elif kind == "expr":
            gold, pred = f"x^2 + {2 * a}x + {a * a}", f"(x+{a})^2"
        elif kind == "decimal":
            gold, pred = f"\\frac{{{a}}}{{4}}", f"{a / 4}"
        else:
            gold, pred = f"{a}\\pi", f"\\pi \\cdot {a}"
        wrong = rng.random() < 0.1
        if wrong:
            pred = f"{a + b + 1}"
        pairs.append((pred, gold))
        expected.append(0.0 if wrong else 1.0)
    return pairs, expected


def run_once(
    pairs: list[tuple[str, str]], timeout: float, workers: int | None
) -> tuple[float, float, list[MetricScore], int]:
    """Score ``pairs`` with a fresh metric: (wall seconds, worker CPU seconds, scores, workers)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    metric = MathVerifyAccuracy(timeout=timeout, workers=workers)
    start = time.perf_counter()
    try:
        scores = metric.score_batch(pairs)
        elapsed = time.perf_counter() - start
        size = metric.pool.size
    finally:
        metric.close()  # reaps the worker host, so its CPU time shows up in RUSAGE_CHILDREN
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return elapsed, cpu, scores, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=1, help="fresh pool each run; best counts")
    args = parser.parse_args(argv)

    pairs, expected = make_pairs(args.n)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    runs = [run_once(pairs, args.timeout, args.workers) for _ in range(max(1, args.repeat))]
    best, cpu, scores, workers = min(runs, key=lambda run: run[0])

    values = [s.value for s in scores]
    timeouts = sum(1 for s in scores if s.details.get("timeout"))
    fast = sum(1 for s in scores if s.details.get("fast_path"))
    mismatches = sum(1 for v, e in zip(values, expected, strict=True) if v != e)
    verdict = "PASS" if best <= TARGET_SECONDS else "FAIL"
    print(f"T7 scoring: {len(pairs)} pairs, {workers} workers, timeout {args.timeout:g}s")
    print(f"  machine: {os.cpu_count()} CPUs, 1-minute load average {load:.2f} before the run")
    print(f"  wall time (incl. pool start): {best:.2f}s  target {TARGET_SECONDS:.1f}s  {verdict}")
    if len(runs) > 1:
        print("  all runs: " + ", ".join(f"{run[0]:.2f}s" for run in runs))
    print(f"  worker CPU time (host + workers): {cpu:.2f}s")
    print(
        f"  accuracy {sum(values) / len(values):.3f} (expected {sum(expected) / len(values):.3f})"
    )
    print(f"  {fast} accepted by the exact fast path, {len(pairs) - fast} sent to math-verify")
    print(f"  timeouts {timeouts}, verdicts differing from expectation {mismatches}")
    return 0 if verdict == "PASS" and mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
