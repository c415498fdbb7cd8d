"""T4 cached rerun: a 10,000-row cell served from the cache.

Primes the cache through litellm against the mock server, then times (in one process, imports
warmed) a raw diskcache read of the same entries and a full ``evaluate()`` rerun, best of three
each; the rerun includes the preset load through datasets, validation, cache lookups, scoring,
report and manifest (its process CPU time is printed too). Target: framework
time per sample <= 100 µs beyond the raw read, and 0 requests to the server on the rerun.

    python benchmarks/bench_cached_rerun.py [--rows 10000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _harness import ENV, mock_server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    import os

    os.environ.update({k: v for k, v in ENV.items() if k.startswith(("LITELLM", "HF_"))})
    import diskcache

    from pytest_themis import evaluate
    from pytest_themis.experiment.cache_manager import CacheManager

    rows = [
        {
            "id": f"q{i}",
            "question": f"Question {i}: what is {i} + {i}?",
            "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}",
        }
        for i in range(args.rows)
    ]
    with tempfile.TemporaryDirectory() as tmp, mock_server(0.0) as url:
        data = Path(tmp) / "data"
        data.mkdir()
        import json

        with (data / "gsm8k.jsonl").open("w") as fh:
            for row in rows:
                fh.write(json.dumps({"question": row["question"], "answer": row["answer"]}) + "\n")
        cache_dir = Path(tmp) / "cache"

        def run() -> tuple[float, float, object]:
            start, cpu = time.perf_counter(), time.process_time()
            report = evaluate(
                "gsm8k",
                model="openai/mock",
                api_base=url,
                data_dir=data,
                storage=cache_dir,
                max_parallel=256,
            )
            return time.perf_counter() - start, time.process_time() - cpu, report

        prime_s, _, primed = run()
        primed_requests = sum(r.generation.attempts for r in primed.records)  # type: ignore[attr-defined]
        reruns = [run() for _ in range(3)]
        rerun_s, _, report = min(reruns, key=lambda r: r[0])
        rerun_cpu = min(r[1] for r in reruns)
        rerun_requests = sum(not r.generation.cached for r in report.records)  # type: ignore[attr-defined]
        keys = [CacheManager(cache_dir).key_for(r.task) for r in report.records]  # type: ignore[attr-defined]

        cache = diskcache.Cache(str(cache_dir))
        raw_times = []
        for _ in range(3):
            start = time.perf_counter()
            for key in keys:
                cache.get(key)
            raw_times.append(time.perf_counter() - start)
        raw_s = min(raw_times)
        cache.close()

    n = len(keys)
    per_sample_us = (rerun_s - raw_s) / n * 1e6
    print(f"T4: {n} rows; priming run {prime_s:.2f} s ({primed_requests} requests)")
    print(f"  cached rerun {rerun_s:.3f} s, {rerun_requests} generations not served from cache")
    # CPU time (all threads) stays comparable on a shared machine, where wall time includes
    # waiting for a core.
    per_sample_cpu = rerun_cpu / n * 1e6
    print(f"  cached rerun CPU {rerun_cpu:.3f} s ({per_sample_cpu:.1f} µs/sample)")
    print(
        f"  raw diskcache read of the same {n} entries {raw_s:.3f} s "
        f"({raw_s / n * 1e6:.1f} µs/entry)"
    )
    print(f"  framework time beyond the raw read: {per_sample_us:.1f} µs/sample (target <= 100)")
    ok = per_sample_us <= 100 and rerun_requests == 0
    print("T4", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
