"""T9 adaptive concurrency: the server serves 40 requests at once and answers 429 above that.

Runs ``evaluate(max_parallel="auto")`` through litellm against the mock server (its own
process), with the worker pool started and warmed first as the pytest door does, and reports the
share of 429s and the throughput relative to the server's capacity (40 / latency requests per
second). Targets: 429s <= 5% of requests, throughput >= 85%.

    python benchmarks/bench_adaptive.py [--rows 2000] [--latency 0.2] [--capacity 40]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from _harness import DEFAULT_MODEL, mock_server, question_rows, warmed_up


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
    from pytest_themis import evaluate

    with mock_server(args.latency, max_concurrency=args.capacity) as url:
        common = warmed_up(url, args.model)
        with tempfile.TemporaryDirectory() as cache:
            start = time.perf_counter()
            report = evaluate(
                dataset=question_rows(args.rows),
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
