"""Cost of provider faults: the same 1,000 generations with and without a realistic fault mix.

Runs ``evaluate()`` through litellm against the fault-injecting OpenAI-compatible server (in
this process) twice: fault-free, then with 10% 429 (Retry-After 1 s), 5% 500/503, 2% timeouts,
1% connection resets and 1% malformed bodies. Prints both wall times, their ratio, and checks
that the faulty run scored exactly like the clean one::

    python benchmarks/bench_faults.py [--rows 1000] [--max-parallel 64]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from pytest_themis import evaluate  # noqa: E402
from pytest_themis.testing import FaultPlan, OpenAIServer  # noqa: E402

CLIENT_TIMEOUT = 1.0
FAULTS = {
    "rate_429": 0.10,
    "retry_after": 1.0,
    "rate_500": 0.025,
    "rate_503": 0.025,
    "rate_timeout": 0.02,
    "timeout_delay": 3.0,  # above the client timeout: the client gives up first
    "rate_reset": 0.01,
    "rate_malformed": 0.01,
}


def rows(n: int) -> list[dict[str, Any]]:
    """Rows whose prompt tells the server what to answer; every third answer is wrong."""
    out = []
    for i in range(n):
        said = i + 1 if i % 3 == 0 else i
        out.append({"id": f"q{i:04d}", "question": f"What is {i} + 0?", "said": said, "gold": i})
    return out


def run(url: str, data: list[dict[str, Any]], cache: Path, max_parallel: int) -> tuple[Any, float]:
    started = time.perf_counter()
    report = evaluate(
        dataset=data,
        model="openai/fake-chat",
        api_base=url,
        api_key="sk-bench-faults",
        prompt="{question}\nEXPECTED: {said}",
        reference_field="gold",
        metrics=["exact_match"],
        extractor="gsm8k",
        max_parallel=max_parallel,
        max_retries=8,
        timeout=CLIENT_TIMEOUT,
        storage=cache,
    )
    return report, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--max-parallel", type=int, default=64)
    parser.add_argument(
        "--warmup", type=int, default=200, help="untimed rows first (imports, connections)"
    )
    args = parser.parse_args(argv)
    data = rows(args.rows)
    with tempfile.TemporaryDirectory() as tmp, OpenAIServer() as server:
        if args.warmup:
            run(server.url, rows(args.warmup), Path(tmp) / "warmup", args.max_parallel)
        server.reset_stats()
        clean, clean_s = run(server.url, data, Path(tmp) / "clean", args.max_parallel)
        clean_stats = server.stats
        server.set_plan(FaultPlan(**FAULTS, seed=7))
        server.reset_stats()
        faulty, faulty_s = run(server.url, data, Path(tmp) / "faulty", args.max_parallel)
        stats = server.stats
    mean_clean = clean.evaluation_report.metrics["ExactMatch"].mean
    mean_faulty = faulty.evaluation_report.metrics["ExactMatch"].mean
    errors = faulty.evaluation_report.errors
    print(f"rows: {args.rows}, max_parallel: {args.max_parallel}, client timeout {CLIENT_TIMEOUT}s")
    print(f"fault-free: {clean_s:6.2f} s  ({clean_stats.request_count} requests)")
    print(
        f"faulty:     {faulty_s:6.2f} s  ({stats.request_count} requests; "
        f"{dict(sorted(stats.outcome_counts.items()))})"
    )
    print(f"ratio faulty/fault-free: {faulty_s / clean_s:.2f}x")
    print(f"ExactMatch fault-free {mean_clean:.4f}, faulty {mean_faulty:.4f}, errors {errors}")
    same = errors == 0 and mean_clean == mean_faulty
    print("metrics equal:", same)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
