"""HumanEval-style executions through the code sandbox, beside the bare interpreter start-up floor.

Runs N programs (default 1,000: a mix of passing and failing candidates for small problems) with
the sandbox's limits on, ``--workers`` at a time, and the same number of bare ``python -I -S -c
pass`` starts with the same concurrency — the floor no process-per-candidate sandbox can beat.
Target: 1,000 executions ≤ 30 s on 2 cores.

    python benchmarks/bench_sandbox.py [--n 1000] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from pytest_themis.evaluation.code_sandbox import SandboxLimits, run_programs
from pytest_themis.evaluation.metrics.code_execution import assemble_program

PROBLEMS = [
    (
        {
            "prompt": "def add(a: int, b: int) -> int:\n",
            "test": "def check(f):\n    assert f(2, 3) == 5\n    assert f(-1, 1) == 0\n",
            "entry_point": "add",
        },
        ["    return a + b\n", "    return a - b\n"],
    ),
    (
        {
            "prompt": "def is_palindrome(s: str) -> bool:\n",
            "test": "def check(f):\n    assert f('abba')\n    assert not f('abc')\n",
            "entry_point": "is_palindrome",
        },
        ["    return s == s[::-1]\n", "    return True\n"],
    ),
    (
        {
            "prompt": "from typing import List\n\ndef evens(xs: List[int]) -> List[int]:\n",
            "test": "def check(f):\n    assert f([1, 2, 3, 4]) == [2, 4]\n",
            "entry_point": "evens",
        },
        ["    return [x for x in xs if x % 2 == 0]\n", "    return xs\n"],
    ),
]


def programs(n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        for problem, candidates in PROBLEMS:
            for code in candidates:
                out.append(assemble_program(code, problem))
    return out[:n]


def floor(n: int, workers: int) -> float:
    argv = [sys.executable, "-I", "-S", "-B", "-c", "pass"]
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: subprocess.run(argv, check=True), range(n)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    sources = programs(args.n)
    limits = SandboxLimits()
    started = time.perf_counter()
    results = run_programs(sources, limits, args.workers)
    sandbox = time.perf_counter() - started
    passed = sum(r.passed for r in results)
    bare = floor(args.n, args.workers)
    print(f"load: {os.getloadavg()[0]:.2f}")
    print(
        f"sandbox: {args.n} executions in {sandbox:.2f} s ({passed} passed), "
        f"{sandbox / args.n * 1000:.1f} ms each, {args.workers} at a time"
    )
    print(f"floor (bare interpreter starts): {bare:.2f} s; sandbox / floor = {sandbox / bare:.2f}x")
    print(
        f"target 1,000 executions <= 30 s: {'met' if sandbox * 1000 / args.n <= 30 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
