"""Benchmark T7: score 500 MATH-style (prediction, gold) pairs with MathVerifyAccuracy.

Wall time includes starting the worker pool. Run: ``python benchmarks/bench_scoring.py``
(``--repeat 3`` on a shared machine: each run starts a fresh pool and the best run counts).

``--engines local,dask,ray`` instead scores ``-n`` generation records in one run in this process
and on the engines (``score_on_engine``: ``EngineScoring`` over
``DaskExecutionBackend(n_workers=2)`` and ``RayExecutionBackend(num_cpus=2, actors=2)``), in the
orchestrator's batches of 100. Every
run starts fresh math-verify pools (2 processes in all: 2 here, 1 per engine worker); the
engines are started and warmed up untimed first.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time
from typing import Any

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
    parser.add_argument("--engines", default=None, help="e.g. local,dask,ray: scoring on engines")
    args = parser.parse_args(argv)
    if args.engines:
        return engines_main(args.n, args.timeout, args.engines.split(","))

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


def _records(pairs: list[tuple[str, str]]) -> list[Any]:
    from pytest_themis.core.entities import GenerationRecord, ModelSpec, SamplingConfig
    from pytest_themis.generation.plan import GenerationPlan
    from pytest_themis.generation.templates import PromptTemplate

    plan = GenerationPlan(
        [PromptTemplate("p", "{q}")],
        [ModelSpec("bench", "fake")],
        [SamplingConfig()],
        reference_field="gold",
    )
    rows = [{"id": f"r{i}", "q": "?", "gold": gold} for i, (_, gold) in enumerate(pairs)]
    tasks = plan.iter_tasks(plan.prepare(rows))
    return [GenerationRecord(task=t, text=p) for t, (p, _) in zip(tasks, pairs, strict=True)]


def _engine(name: str) -> Any:
    if name == "dask":
        from pytest_themis.backends.dask import DaskExecutionBackend

        return DaskExecutionBackend(n_workers=2)
    from pytest_themis.backends.ray import RayExecutionBackend

    return RayExecutionBackend(num_cpus=2, actors=2)


def _score_all(pipeline: Any, records: list[Any]) -> tuple[float, list[Any]]:
    start = time.perf_counter()
    try:
        scored = [
            r for i in range(0, len(records), 100) for r in pipeline.evaluate(records[i : i + 100])
        ]
    finally:
        pipeline.close()
    return time.perf_counter() - start, scored


def engines_main(n: int, timeout: float, engines: list[str]) -> int:
    from pytest_themis.backends.scoring import EngineScoring
    from pytest_themis.evaluation.pipeline import EvaluationPipeline

    pairs, expected = make_pairs(n)
    records = _records(pairs)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"scoring on the engine: {n} records, math-verify timeout {timeout:g}s")
    print(f"  machine: {os.cpu_count()} CPUs, 1-minute load average {load:.2f} before the run")
    results: dict[str, list[float]] = {}
    for name in engines:
        if name == "local":
            metric = MathVerifyAccuracy(timeout=timeout, workers=2)
            seconds, scored = _score_all(EvaluationPipeline(metrics=[metric]), records)
        else:
            backend = _engine(name)
            try:
                backend.open()  # untimed: the cluster starts; a first batch warms the workers
                _score_all(
                    EngineScoring(EvaluationPipeline(metrics=["exact_match"]), backend), records[:8]
                )
                metric = MathVerifyAccuracy(timeout=timeout, workers=1)
                seconds, scored = _score_all(
                    EngineScoring(EvaluationPipeline(metrics=[metric]), backend), records
                )
            finally:
                backend.shutdown()
        results[name] = [r.scores["MathVerifyAccuracy"].value for r in scored]
        base = results.get("local")
        print(
            f"  {name:6s} {seconds:6.2f}s  {n / seconds:7.0f} records/s"
            + (
                f"  same scores as local: {results[name] == base}"
                if base is not None and name != "local"
                else ""
            )
        )
    wrong = {
        name: sum(v != e for v, e in zip(values, expected, strict=True))
        for name, values in results.items()
    }
    print(f"  verdicts differing from expectation: {wrong}")
    return 0 if len({tuple(v) for v in results.values()}) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
