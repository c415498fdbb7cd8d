"""S1–S3 scale-out: Ray and Dask execution against this machine's default run, in one process.

Every figure is a ratio to a baseline measured in the same invocation. Engines run on this
machine: Ray starts a local instance (``RayExecutionBackend(num_cpus=2, actors=2)``); for Dask a
``dask scheduler`` and 2 single-thread ``dask worker`` processes start as subprocesses and
``DaskExecutionBackend("tcp://127.0.0.1:PORT")`` connects, as with a deployed cluster
(``--dask-cluster local`` uses ``DaskExecutionBackend(n_workers=2)``'s in-process
``LocalCluster`` instead, whose scheduler shares this process, and its GIL, with the run).
Each engine is started and warmed up (workers import pytest-themis and their providers) by an
untimed run first: the figures are steady-state generation, not cluster start-up.

    python benchmarks/bench_scaleout.py                 # S1, S2 and S3, Ray and Dask
    python benchmarks/bench_scaleout.py s1 --rows 400 --cpu-ms 50
    python benchmarks/bench_scaleout.py s2 --rows 10000 --engines dask
    python benchmarks/bench_scaleout.py s3 --rows 2000 --latency 0.1

S1  a CPU-bound Python-callable model (``--cpu-ms`` of pure-Python CPU per call, calibrated
    here): the engines with 2 workers vs the default in-process run. Target: >= 1.7x faster.
S2  the fake provider: per-sample overhead of each engine over the default run, in ms/sample,
    at a window of ``--max-parallel`` (256: batches of 64 on 2 workers; an engine's cost is
    per batch, so a narrow window means small batches and more overhead per sample).
    Target: <= 0.5 ms/sample.
S3  litellm at C=64 against the mock OpenAI-compatible server (its own process): the engines
    with 2 workers vs the default local worker-process run (a prestarted pool of 2 processes).
    Target (Ray): <= 1.10x. Dask is reported alongside.

``local_cores`` / ``worker_cores`` are the CPU seconds a run used over its wall time (Dask's
workers report theirs; Ray's are not counted): on a busy machine they show how much of the two
cores a run actually got, which caps what S1 can show.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

from _harness import DEFAULT_MODEL, ENV, mock_server, question_rows

WORKERS = 2
#: Seconds a cluster may take to start on a busy machine.
START_TIMEOUT = 120.0
RAY_OBJECT_STORE = 80 * 1024 * 1024


class CpuModel:
    """A Python-callable model that burns ``iterations`` of a pure-Python loop per call."""

    def __init__(self, iterations: int) -> None:
        self.iterations = iterations

    def __call__(self, prompt: str) -> str:
        acc = 0
        for i in range(self.iterations):
            acc = (acc * 31 + i) % 1_000_003
        return f"{len(prompt)}:{acc}"


def calibrate(cpu_ms: float) -> int:
    """Loop iterations that take ``cpu_ms`` of this process's CPU time (not wall: the machine
    may be busy)."""
    probe = CpuModel(200_000)
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        probe("x")
        best = min(best, time.process_time() - start)
    return max(1, int(probe.iterations * (cpu_ms / 1000) / best))


@contextlib.contextmanager
def dask_processes(workers: int) -> Iterator[str]:
    """``dask scheduler`` and ``dask worker --nworkers N`` (one thread each) as subprocesses on
    127.0.0.1, as a cluster is deployed; yields the scheduler address, stops them by PID."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "dask"]
    quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [
        subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            env=ENV,
            **quiet,
        )
    ]
    try:
        procs.append(
            subprocess.Popen(
                [*dask, "worker", address, "--host", "127.0.0.1", "--nworkers", str(workers)]
                + ["--nthreads", "1", "--no-dashboard", "--memory-limit", "0"],
                env=ENV,
                **quiet,
            )
        )
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def engine_backend(engine: str, dask_cluster: str) -> Iterator[Any]:
    """A started backend with :data:`WORKERS` workers; shut down (and its cluster stopped)."""
    with contextlib.ExitStack() as stack:
        if engine == "ray":
            from pytest_themis.backends.ray import RayExecutionBackend

            backend: Any = RayExecutionBackend(
                num_cpus=WORKERS,
                actors=WORKERS,
                init_kwargs={"object_store_memory": RAY_OBJECT_STORE},
            )
        else:
            from pytest_themis.backends.dask import DaskExecutionBackend

            if dask_cluster == "local":
                backend = DaskExecutionBackend(n_workers=WORKERS)
            else:
                address = stack.enter_context(dask_processes(WORKERS))
                backend = DaskExecutionBackend(address, connect_timeout=START_TIMEOUT)
        stack.callback(backend.shutdown)
        backend.open()
        if engine == "dask":
            backend.client.wait_for_workers(WORKERS, timeout=START_TIMEOUT)
        yield backend


def timed(run: Callable[[], Any], expect: int) -> float:
    start = time.perf_counter()
    report = run()
    wall = time.perf_counter() - start
    if len(report.records) != expect or report.failures:
        raise SystemExit(
            f"incomplete run: {len(report.records)} of {expect} records, "
            f"{len(report.failures)} failures"
        )
    return wall


def process_cpu() -> float:
    """CPU seconds (user + system) this process has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker_cpu(backend: Any) -> float | None:
    """CPU seconds the engine's workers have used, where the engine can say (Dask)."""
    client = getattr(backend, "client", None)
    if client is None:
        return None
    return float(sum(client.run(process_cpu).values()))


def on_engines(
    args: argparse.Namespace,
    run: Callable[[Any, int], Any],
    rows: int,
    warm_rows: int,
) -> dict[str, dict[str, float]]:
    """Per engine: wall time of ``run(backend, rows)`` after an untimed ``warm_rows`` run, and
    (when the engine can say) the CPU its workers used, as cores = CPU / wall."""
    figures: dict[str, dict[str, float]] = {}
    for engine in args.engines:
        with engine_backend(engine, args.dask_cluster) as backend:
            timed(lambda b=backend: run(b, warm_rows), warm_rows)
            before = worker_cpu(backend)
            wall = timed(lambda b=backend: run(b, rows), rows)
            after = worker_cpu(backend)
        figures[engine] = {"wall_s": wall}
        if before is not None and after is not None:
            figures[engine]["worker_cores"] = (after - before) / wall
    return figures


def s1(args: argparse.Namespace) -> dict[str, Any]:
    from pytest_themis import evaluate

    model = CpuModel(calibrate(args.cpu_ms))

    def run(backend: Any, n: int) -> Any:
        return evaluate(
            dataset=question_rows(n),
            model=model,
            prompt="{q}",
            reference_field="gold",
            metrics=["contains"],
            storage=None,
            execution_backend=backend,
        )

    run(None, 8)  # imports and the shared loop, as the engines' warm-up does for them
    cpu = process_cpu()
    local = timed(lambda: run(None, args.rows), args.rows)
    local_cores = (process_cpu() - cpu) / local
    engines = on_engines(args, run, args.rows, 4 * WORKERS)
    for figures in engines.values():
        figures["speedup"] = local / figures["wall_s"]
    return {
        "part": "S1",
        "rows": args.rows,
        "cpu_ms": args.cpu_ms,
        "local_s": local,
        "local_cores": local_cores,
        "engines": engines,
        "target": ">= 1.7x faster",
        "pass": all(f["speedup"] >= 1.7 for f in engines.values()),
    }


def s2(args: argparse.Namespace) -> dict[str, Any]:
    from pytest_themis import evaluate

    def run(backend: Any, n: int) -> Any:
        return evaluate(
            dataset=question_rows(n),
            model="fake:fake-oracle",
            prompt="{q}",
            reference_field="gold",
            metrics=["contains"],
            storage=None,
            max_parallel=args.max_parallel,
            execution_backend=backend,
        )

    run(None, 64)
    local = timed(lambda: run(None, args.rows), args.rows)
    engines = on_engines(args, run, args.rows, 512)
    for figures in engines.values():
        figures["overhead_ms_per_sample"] = (figures["wall_s"] - local) / args.rows * 1000
    return {
        "part": "S2",
        "rows": args.rows,
        "max_parallel": args.max_parallel,
        "local_s": local,
        "engines": engines,
        "target": "<= 0.5 ms/sample",
        "pass": all(f["overhead_ms_per_sample"] <= 0.5 for f in engines.values()),
    }


def s3(args: argparse.Namespace) -> dict[str, Any]:
    from _harness import warmed_up

    from pytest_themis import evaluate

    with mock_server(args.latency) as url:
        common = warmed_up(url, args.model, processes=WORKERS, max_parallel=64)

        def run(backend: Any, n: int) -> Any:
            return evaluate(
                dataset=question_rows(n),
                storage=tempfile.mkdtemp(prefix="themis-s3-"),
                execution_backend=backend,
                **common,
            )

        local = timed(lambda: run(None, args.rows), args.rows)
        from pytest_themis.generation import pool

        pool.shutdown_pool()  # the engines' workers get the cores to themselves
        engines = on_engines(args, run, args.rows, 256)
    for figures in engines.values():
        figures["ratio"] = figures["wall_s"] / local
    return {
        "part": "S3",
        "rows": args.rows,
        "concurrency": 64,
        "latency_s": args.latency,
        "model": args.model,
        "local_processes_s": local,
        "engines": engines,
        "target": "ray <= 1.10x the local worker-process run",
        "pass": engines["ray"]["ratio"] <= 1.10 if "ray" in engines else None,
    }


PARTS = {"s1": s1, "s2": s2, "s3": s3}
DEFAULT_ROWS = {"s1": 400, "s2": 10_000, "s3": 2000}


def describe(result: dict[str, Any]) -> str:
    part = result["part"]
    lines = [f"{part}: rows={result['rows']}  " + _baseline(result)]
    for engine, figures in result["engines"].items():
        shown = "  ".join(
            f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()
        )
        lines.append(f"  {engine:<5} {shown}")
    verdict = {True: "PASS", False: "FAIL", None: "n/a"}[result["pass"]]
    lines.append(f"  target {result['target']}: {verdict}")
    return "\n".join(lines)


def _baseline(result: dict[str, Any]) -> str:
    key = "local_processes_s" if "local_processes_s" in result else "local_s"
    text = f"baseline {key}={result[key]:.3f}"
    if "local_cores" in result:
        text += f" local_cores={result['local_cores']:.2f}"
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", help="s1 s2 s3 (default: all)")
    parser.add_argument("--engines", nargs="+", choices=["ray", "dask"], default=["ray", "dask"])
    parser.add_argument("--rows", type=int, help="rows per run (default: 400 / 10000 / 2000)")
    parser.add_argument("--cpu-ms", type=float, default=50.0, help="S1: CPU per model call")
    parser.add_argument("--max-parallel", type=int, default=256, help="S2: the window")
    parser.add_argument("--latency", type=float, default=0.1, help="S3: server latency (s)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="S3: model name sent")
    parser.add_argument(
        "--dask-cluster",
        choices=["processes", "local"],
        default="processes",
        help="Dask: scheduler + workers as subprocesses (default) or an in-process LocalCluster",
    )
    parser.add_argument("--json", action="store_true", help="also print each result as JSON")
    args = parser.parse_args()
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from s1 s2 s3")
    os.environ.update({k: v for k, v in ENV.items() if k.startswith(("LITELLM", "HF_"))})
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    ok = True
    for name in args.parts or list(PARTS):
        part_args = argparse.Namespace(**vars(args))
        part_args.rows = args.rows or DEFAULT_ROWS[name]
        result = PARTS[name](part_args)
        print(describe(result), flush=True)
        if args.json:
            print(json.dumps(result))
        ok = ok and result["pass"] is not False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
