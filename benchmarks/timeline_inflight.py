"""Requests in flight at the server over time, for one ``evaluate()`` run (the T3 diagnosis).

Starts the worker pool as the pytest door does, warms it with a few rows, then runs N rows at
concurrency C against an OpenAI-compatible server with a fixed latency and prints, every half
second, how many requests the server had received and how many it was holding. A client that
kept every slot busy would show C in flight from the start to the last round; gaps show where
the client was late to send.

The server runs on a thread of this process (it records arrival times), which costs this
process a little CPU; the generation itself runs in the worker processes.

    python benchmarks/timeline_inflight.py [--n 2000] [--c 256] [--latency 2.0] [--processes 4]
"""

from __future__ import annotations

import argparse
import bisect
import sys
import tempfile
import time

from _harness import DEFAULT_MODEL, question_rows, warmed_up


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--c", type=int, default=256)
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument(
        "--processes", type=int, default=None, help="worker processes (default: one per core)"
    )
    args = parser.parse_args()
    from pytest_themis import evaluate
    from pytest_themis.testing import FaultPlan, OpenAIServer

    with OpenAIServer(FaultPlan(latency=args.latency)) as server:
        common = warmed_up(server.url, args.model, processes=args.processes, max_parallel=args.c)
        server.reset_stats()
        with tempfile.TemporaryDirectory() as cache:
            start = time.monotonic()
            evaluate(dataset=question_rows(args.n), storage=cache, **common)
            wall = time.monotonic() - start
        arrivals = sorted(t - start for t, _, _ in server.stats.arrivals)
    bound = -(-args.n // args.c) * args.latency
    print(
        f"N={args.n} C={args.c} latency={args.latency}s: wall {wall:.2f} s, "
        f"bound ceil(N/C) x latency {bound:.1f} s"
    )
    print("  time   received  in flight")
    for step in range(int(wall * 2) + 1):
        t = step / 2
        received = bisect.bisect_right(arrivals, t)
        answered = bisect.bisect_right(arrivals, t - args.latency)
        print(f"  {t:5.1f}  {received:8d}  {received - answered:9d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
