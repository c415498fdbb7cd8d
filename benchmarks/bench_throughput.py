"""T1–T3 throughput: pytest-themis end to end vs a plain litellm asyncio loop (the floor).

Both run as fresh processes against the same mock OpenAI-compatible server (its own process,
fixed latency), so both pay interpreter start-up and the litellm import; the floor is a bare
``asyncio.gather`` over ``litellm.acompletion`` behind a semaphore. pytest-themis runs
``pytest --themis-preset=gsm8k`` on an N-row local JSONL with a cold cache.

    python benchmarks/bench_throughput.py t1   # N=1000 C=32 latency 0.2 s: <= 1.10 x floor
    python benchmarks/bench_throughput.py t2   # N=1000 C=64 latency 0.1 s: <= 1.00 x floor
    python benchmarks/bench_throughput.py t3   # N=2000 C=256 latency 2 s: <= 1.25 x ceil(N/C) x lat

T3 reports the pytest end-to-end wall and, for the target, the generation phase of a warmed
process (imports and worker start-up are a fixed cost of a few seconds that is not a cap).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

from _harness import (
    DEFAULT_MODEL,
    HERE,
    PYTEST,
    mock_server,
    run_child,
    run_floor,
    run_timed,
    write_gsm8k_jsonl,
)

TARGETS = {
    "t1": {"n": 1000, "c": 32, "latency": 0.2, "vs": "floor", "limit": 1.10},
    "t2": {"n": 1000, "c": 64, "latency": 0.1, "vs": "floor", "limit": 1.00},
    "t3": {"n": 2000, "c": 256, "latency": 2.0, "vs": "bound", "limit": 1.25},
}


def themis_run(n: int, c: int, url: str, model: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        write_gsm8k_jsonl(data / "gsm8k.jsonl", n)
        cmd = [
            *PYTEST,
            "--themis-preset=gsm8k",
            f"--themis-model={model}",
            f"--themis-api-base={url}",
            f"--themis-data-dir={data}",
            f"--themis-max-parallel={c}",
            f"--themis-cache-dir={Path(tmp) / 'cache'}",
            "--themis-max-errors=0",
        ]
        wall, done = run_timed(cmd, cwd=Path(tmp))
        if done.returncode != 0:
            raise SystemExit(
                f"pytest-themis run failed ({done.returncode}):\n{done.stdout[-3000:]}"
            )
        if f"{n:>4}" not in done.stdout and str(n) not in done.stdout:
            raise SystemExit(f"summary does not show n={n}:\n{done.stdout[-2000:]}")
    return wall


WARM_RUN = r"""
import json, sys, tempfile, time
n, c, url, model, here = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
sys.path.insert(0, here)
from _harness import question_rows, warmed_up
from pytest_themis import evaluate
common = warmed_up(url, model, max_parallel=c)
start = time.perf_counter()
report = evaluate(dataset=question_rows(n), storage=tempfile.mkdtemp(), **common)
wall = time.perf_counter() - start
print(json.dumps({"wall": wall, "errors": len(report.failures), "n": len(report.records)}))
"""


def warm_run(n: int, c: int, url: str, model: str) -> float:
    """Generation wall time of ``evaluate()`` with start-up (imports, worker pool) excluded."""
    result = run_child(WARM_RUN, n, c, url, model, HERE)
    if result["errors"] or result["n"] != n:
        raise SystemExit(f"warm run incomplete: {result}")
    return float(result["wall"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--repeat", type=int, default=1, help="alternate runs, report the best")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model name sent by both sides")
    args = parser.parse_args()
    spec = TARGETS[args.target]
    n, c, latency = spec["n"], spec["c"], spec["latency"]
    ours: list[float] = []
    floors: list[float] = []
    with mock_server(latency) as url:
        for _ in range(args.repeat):
            if spec["vs"] == "floor":
                floors.append(run_floor(n, c, url, args.model)["wall_s"])
            ours.append(themis_run(n, c, url, args.model))
    best = min(ours)
    print(f"{args.target.upper()}: N={n} C={c} latency={latency}s model={args.model}")
    print(f"  pytest-themis wall: {best:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in ours)})")
    if spec["vs"] == "floor":
        floor = min(floors)
        ratio = best / floor
        print(
            f"  litellm floor wall: {floor:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in floors)})"
        )
    else:
        floor = math.ceil(n / c) * latency
        ratio = best / floor
        print(f"  latency bound ceil(N/C) x latency: {floor:.2f} s; end-to-end ratio {ratio:.3f}")
        with mock_server(latency) as url:
            warm = warm_run(n, c, url, args.model)
            plain = run_floor(n, c, url, args.model)
        ratio = warm / floor
        print(f"  generation phase (evaluate(), start-up excluded): {warm:.2f} s")
        print(
            f"  for reference, the plain litellm loop's own generation phase: "
            f"{plain['loop_s']:.2f} s ({plain['cpu_s'] / n * 1000:.1f} ms CPU per call)"
        )
    verdict = "PASS" if ratio <= spec["limit"] else "FAIL"
    print(f"  ratio {ratio:.3f} (target <= {spec['limit']:.2f}) {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
