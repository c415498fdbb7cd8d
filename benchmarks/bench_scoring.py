"""Benchmark T7: score 500 MATH-style (prediction, gold) pairs with MathVerifyAccuracy.

Wall time includes starting the worker pool. Run: ``python benchmarks/bench_scoring.py``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)

    pairs, expected = make_pairs(args.n)
    metric = MathVerifyAccuracy(timeout=args.timeout, workers=args.workers)
    start = time.perf_counter()
    try:
        scores = metric.score_batch(pairs)
        elapsed = time.perf_counter() - start
        workers = metric.pool.size
    finally:
        metric.close()

    values = [s.value for s in scores]
    timeouts = sum(1 for s in scores if s.details.get("timeout"))
    fast = sum(1 for s in scores if s.details.get("fast_path"))
    mismatches = sum(1 for v, e in zip(values, expected, strict=True) if v != e)
    verdict = "PASS" if elapsed <= TARGET_SECONDS else "FAIL"
    print(f"T7 scoring: {len(pairs)} pairs, {workers} workers, timeout {args.timeout:g}s")
    print(
        f"  wall time (incl. pool start): {elapsed:.2f}s  target {TARGET_SECONDS:.1f}s  {verdict}"
    )
    print(
        f"  accuracy {sum(values) / len(values):.3f} (expected {sum(expected) / len(expected):.3f})"
    )
    print(f"  {fast} accepted by the exact fast path, {len(pairs) - fast} sent to math-verify")
    print(f"  timeouts {timeouts}, verdicts differing from expectation {mismatches}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
