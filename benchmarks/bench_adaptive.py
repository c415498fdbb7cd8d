"""T9 adaptive concurrency: the server serves 40 requests at once and answers 429 above that.

Runs ``evaluate(max_parallel="auto")`` through litellm against the mock server (its own
process), with the worker pool started and warmed first as the pytest door does, and reports the
share of 429s and the throughput relative to the server's capacity (40 / latency requests per
second). Targets: 429s <= 5% of requests, throughput >= 85%.

    python benchmarks/bench_adaptive.py [--rows 2000] [--latency 0.2] [--capacity 40]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from _harness import DEFAULT_MODEL, ENV, mock_server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--capacity", type=int, default=40)
    parser.add_argument(
        "--fixed",
        type=int,
        default=None,
        help="a fixed window instead of 'auto', to see the client's own ceiling",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model name sent to the server")
    args = parser.parse_args()
    os.environ.update({k: v for k, v in ENV.items() if k.startswith(("LITELLM", "HF_"))})
    from pytest_themis import evaluate
    from pytest_themis.generation import processes

    # As the pytest door does for litellm runs: worker processes start (and import litellm)
    # before the timed run, so the figure is the controller's, not start-up's.
    processes.prestart(processes.default_processes())

    rows = [
        {"id": i, "q": f"Question {i}: what is {i} + {i}?", "gold": str(2 * i)}
        for i in range(args.rows)
    ]
    with mock_server(args.latency, max_concurrency=args.capacity) as url:
        common = dict(
            model=args.model,
            api_base=url,
            prompt="{q}",
            reference_field="gold",
            metrics=["contains"],
        )
        evaluate(dataset=rows[:4], storage=None, **common)  # warm-up: imports, pool, not timed
        with tempfile.TemporaryDirectory() as cache:
            start = time.perf_counter()
            report = evaluate(
                dataset=rows,
                storage=cache,
                max_parallel=args.fixed or "auto",
                max_retries=20,
                **common,
            )
            wall = time.perf_counter() - start
    attempts = sum(r.generation.attempts for r in report.records)
    rejected = attempts - len(report.records)
    errors = len(report.failures)
    capacity = args.capacity / args.latency
    throughput = args.rows / wall
    share_429 = rejected / attempts
    print(
        f"T9: {args.rows} rows, server capacity {args.capacity} in flight x "
        f"{args.latency}s = {capacity:.0f} req/s; window "
        f"{f'fixed at {args.fixed}' if args.fixed else 'auto'}; model {args.model}"
    )
    print(
        f"  wall {wall:.2f} s, throughput {throughput:.1f} req/s = "
        f"{throughput / capacity:.1%} of capacity (target >= 85%)"
    )
    print(
        f"  requests {attempts}, 429s {rejected} = {share_429:.2%} (target <= 5%), errors {errors}"
    )
    ok = throughput / capacity >= 0.85 and share_429 <= 0.05 and errors == 0
    print("T9", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
