"""S5 S3 cached rerun: 10,000 rows served from an S3 store with few GET requests.

Starts moto's S3 server (``python -m moto.server``) on 127.0.0.1 with a counting proxy in front
of it, runs ``evaluate()`` over ``--rows`` rows with the offline fake model into
``S3Storage("s3://bench/s5")`` (priming: counts PUTs and the objects left), then reruns in a fresh
store object and counts the HTTP GET requests (LIST included) the rerun makes at the proxy.
Target: <= 50 GETs and 0 model requests (every record cached).

    pip install -e ".[test,s3]" "moto[server]"
    python benchmarks/bench_s3.py [--rows 10000] [--fault-rate 0.0]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--fault-rate", type=float, default=0.0, help="500/503 share at the proxy")
    args = parser.parse_args()

    from support.s3_server import FAKE_ENV, FaultProxy, MotoServer, make_bucket

    os.environ.update(FAKE_ENV)
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    from pytest_themis import evaluate
    from pytest_themis.storage.s3 import S3Storage

    rows = [{"question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(args.rows)]
    spec = dict(
        dataset=rows,
        prompt="{question}",
        reference_field="answer",
        metrics=["exact_match"],
        model="fake:fake-math-llm",
    )
    server = MotoServer()
    proxy = FaultProxy(server.endpoint, fault_rate=args.fault_rate, seed=1)
    try:
        bucket = make_bucket(server.endpoint, "bench")
        url = f"s3://{bucket}/s5"

        started = time.perf_counter()
        first = evaluate(**spec, storage=S3Storage(url, endpoint_url=proxy.endpoint))
        prime_s = time.perf_counter() - started
        prime_counts, prime_faults = dict(proxy.counts), proxy.faults
        objects = sum(
            1 for _ in S3Storage(url, endpoint_url=server.endpoint, compact_threshold=10**9)._list()
        )

        proxy.reset()
        started = time.perf_counter()
        store = S3Storage(url, endpoint_url=proxy.endpoint)
        again = evaluate(**spec, storage=store)
        rerun_s = time.perf_counter() - started
        rerun_counts, rerun_faults = dict(proxy.counts), proxy.faults

        proxy.reset()
        started = time.perf_counter()
        raw = S3Storage(url, endpoint_url=proxy.endpoint)
        keys = [r.generation.task.cache_key for r in again.records]
        found = raw.get_many(keys)
        load_s = time.perf_counter() - started
    finally:
        proxy.stop()
        server.stop()

    cached = sum(r.generation.cached for r in again.records)
    gets = rerun_counts.get("GET", 0)
    print(f"rows {args.rows}, fault rate {args.fault_rate}, load {os.getloadavg()[0]:.2f}")
    print(
        f"prime: {prime_s:.2f} s, forwarded requests {prime_counts}, injected faults "
        f"{prime_faults}, objects left {objects}, errors {len(first.failures)}"
    )
    print(
        f"rerun: {rerun_s:.2f} s, forwarded requests {rerun_counts}, injected faults "
        f"{rerun_faults}, cached {cached}/{len(again.records)}"
    )
    print(f"index load alone (LIST + GETs + decode {len(found)} entries): {load_s:.3f} s")
    ok = gets <= 50 and cached == len(again.records) == len(first.records) == args.rows
    print(f"S5: {gets} GET requests (target <= 50): {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
