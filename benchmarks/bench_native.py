"""The native OpenAI client: pytest door vs a plain aiohttp loop, CPU per request, T3.

Everything runs against the mock OpenAI-compatible server in its own process (fixed latency).
Each figure is a ratio within one run of this script, so machine load affects both sides.

    python benchmarks/bench_native.py door --c 32 --latency 0.2   # target <= 1.15 x aiohttp loop
    python benchmarks/bench_native.py door --c 64 --latency 0.1   # target <= 1.50 x aiohttp loop
    python benchmarks/bench_native.py cpu                          # target <= 1 ms CPU per request
    python benchmarks/bench_native.py t3                           # target <= 1.10 x 16 s bound

``door``: whole-process wall time of ``pytest`` on a marker test over N rows (``--preset`` uses
``--themis-preset=gsm8k`` on a local JSONL instead, which also loads ``datasets``) vs a plain
``asyncio`` + ``aiohttp`` loop run as its own process (one session, a semaphore of C).
``--client litellm`` runs the door through litellm for comparison.
``cpu``: client CPU per request in a child process — the provider alone, and the whole runner
(limiter, retries, records) — over N requests at zero latency, process CPU time / N.
``t3``: N=2000, C=256, 2 s latency; the generation phase of ``evaluate()`` in a warmed process
vs ``ceil(N/C) x latency``.
``phases``: one cold and one fully cached door run against a server in this process, timed at
the server: start-up until the first request, first to last request, last request to exit; with
the CPU of each run and how many modules of this package it imported.

``door`` and ``phases`` time processes as a user's repeated runs see them: with their bytecode
(and pytest's assertion rewrites) cached, in a private ``PYTHONPYCACHEPREFIX`` folder warmed by
one untimed run of each side. ``--bytecode off`` times them with ``PYTHONDONTWRITEBYTECODE=1``
instead, so every run of pytest also parses, rewrites and compiles the modules it imports.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import ENV, HERE, PYTEST, mock_server, run_child, write_gsm8k_jsonl

MODEL = "openai/mock"
#: The environment of the timed door and loop processes (see :func:`set_bytecode`).
CHILD_ENV = dict(ENV)

AIOHTTP_LOOP = r"""
import asyncio, json, sys, time, resource
n, c, url, model = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
import aiohttp
async def main():
    sem = asyncio.Semaphore(c)
    headers = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def one(i):
            body = {"model": model, "temperature": 0.0, "max_tokens": 64,
                    "messages": [{"role": "user", "content": f"Question {i}: what is {i} + {i}?"}]}
            async with sem:
                async with session.post(url + "/chat/completions", data=json.dumps(body),
                                        headers=headers) as r:
                    data = json.loads(await r.read())
            return data["choices"][0]["message"]["content"]
        t = time.perf_counter()
        out = await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - t, len(out)
loop_s, count = asyncio.run(main())
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"loop_s": loop_s, "count": count, "cpu_s": ru.ru_utime + ru.ru_stime}))
"""

MARKER_TEST = """
import json

import pytest

ROWS = [json.loads(line) for line in open({data!r}, encoding="utf-8")]


@pytest.mark.themis(
    dataset=ROWS,
    prompts={{"ask": "{{question}}"}},
    models=[{model!r}],
    reference_field="gold",
    metrics=["exact_match"],
)
def test_eval(themis_report):
    assert themis_report.total == {n}
    assert themis_report.errors == 0
"""

CPU_RUN = r"""
import asyncio, json, resource, sys, time
n, url, model = int(sys.argv[1]), sys.argv[2], sys.argv[3]
from pytest_themis.core.entities import CellSpec, GenerationTask, ModelSpec, SamplingConfig
from pytest_themis.generation.router import ProviderRouter
from pytest_themis.generation.runner import GenerationRunner
from pytest_themis.providers.openai_native import OpenAINativeProvider

def tasks(prefix):
    spec = ModelSpec(model, options={"api_base": url})
    cell = CellSpec(spec, "ask", SamplingConfig(max_tokens=64))
    return [GenerationTask(cell, f"{prefix}{i}", 0,
                           ({"role": "user", "content": f"Question {i}: what is {i} + {i}?"},))
            for i in range(n)]

def cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime

provider = OpenAINativeProvider()
async def direct(batch):
    sem = asyncio.Semaphore(32)
    async def one(t):
        async with sem:
            return await provider.agenerate(t, timeout=60)
    return await asyncio.gather(*(one(t) for t in batch))
asyncio.run(direct(tasks("warm")[:50]))
c0, w0 = cpu(), time.perf_counter()
asyncio.run(direct(tasks("p")))
provider_cpu, provider_wall = cpu() - c0, time.perf_counter() - w0

runner = GenerationRunner(ProviderRouter(client="native"), max_parallel=32, processes=1)
list(runner.run(tasks("warm")[:50]))
c0, w0 = cpu(), time.perf_counter()
records = list(runner.run(tasks("r")))
runner_cpu, runner_wall = cpu() - c0, time.perf_counter() - w0
runner.close()
assert all(r.ok for r in records), [r.error for r in records if not r.ok][:3]
print(json.dumps({"provider_cpu_s": provider_cpu, "provider_wall_s": provider_wall,
                  "runner_cpu_s": runner_cpu, "runner_wall_s": runner_wall, "n": len(records)}))
"""

WARM_EVALUATE = r"""
import json, sys, tempfile, time
n, c, url, model, here = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
sys.path.insert(0, here)
from _harness import question_rows
from pytest_themis import evaluate
common = dict(model=model, api_base=url, prompt="{q}", reference_field="gold",
              metrics=["contains"], max_parallel=c, client="native")
evaluate(dataset=question_rows(8), storage=None, **common)  # imports and pool, untimed
start = time.perf_counter()
report = evaluate(dataset=question_rows(n), storage=tempfile.mkdtemp(), **common)
wall = time.perf_counter() - start
print(json.dumps({"wall": wall, "errors": len(report.failures), "n": len(report.records),
                  "litellm": "litellm" in sys.modules}))
"""


def set_bytecode(mode: str, folder: str) -> None:
    """``cached``: timed processes keep their bytecode in ``folder``; ``off``: none is written."""
    CHILD_ENV.clear()
    CHILD_ENV.update(ENV)
    if mode == "cached":
        CHILD_ENV.pop("PYTHONDONTWRITEBYTECODE", None)
        CHILD_ENV["PYTHONPYCACHEPREFIX"] = folder
    else:
        CHILD_ENV["PYTHONDONTWRITEBYTECODE"] = "1"


def run_process(cmd: list[str], cwd: Path | None = None) -> tuple[float, str, int]:
    """Wall seconds, stdout and exit code of ``cmd`` run with :data:`CHILD_ENV`."""
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=CHILD_ENV, cwd=cwd)
    return time.perf_counter() - start, done.stdout + done.stderr, done.returncode


def children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def aiohttp_loop(n: int, c: int, url: str) -> tuple[float, float]:
    """Whole-process wall and CPU seconds of the plain aiohttp loop in a fresh process."""
    cpu = children_cpu()
    cmd = [sys.executable, "-c", AIOHTTP_LOOP, str(n), str(c), url, MODEL.split("/", 1)[1]]
    wall, out, code = run_process(cmd)
    result = json.loads(out.strip().splitlines()[-1]) if code == 0 else {}
    if result.get("count") != n:
        raise SystemExit(f"aiohttp loop incomplete: {out[-2000:]}")
    return wall, children_cpu() - cpu


def door_command(root: Path, n: int, c: int, url: str, client: str, preset: bool) -> list[str]:
    """Write the data (and the marker test) under ``root``; the pytest command to run there."""
    data = root / "data"
    data.mkdir(exist_ok=True)
    write_gsm8k_jsonl(data / "gsm8k.jsonl", n)
    cmd = [
        *PYTEST,
        f"--themis-model={MODEL}",
        f"--themis-api-base={url}",
        f"--themis-max-parallel={c}",
        f"--themis-cache-dir={root / 'cache'}",
        f"--themis-client={client}",
        "--themis-max-errors=0",
    ]
    if preset:
        return [*cmd, "--themis-preset=gsm8k", f"--themis-data-dir={data}"]
    rows = data / "rows.jsonl"
    with rows.open("w") as fh:
        for i in range(n):
            q = f"Question {i}: what is {i} + {i}?"
            fh.write(json.dumps({"question": q, "gold": str(2 * i)}) + "\n")
    (root / "test_bench.py").write_text(MARKER_TEST.format(data=str(rows), model=MODEL, n=n))
    return cmd


def timed_door(cmd: list[str], root: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one pytest run of ``cmd`` in ``root``."""
    cpu = children_cpu()
    wall, out, code = run_process(cmd, cwd=root)
    cpu = children_cpu() - cpu
    if code != 0:
        raise SystemExit(f"pytest run failed ({code}):\n{out[-3000:]}")
    return wall, cpu


def door_run(n: int, c: int, url: str, client: str, preset: bool) -> tuple[float, float]:
    """Whole-process wall and CPU seconds of one cold-cache pytest run over ``n`` rows."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        return timed_door(door_command(root, n, c, url, client, preset), root)


def _walls(runs: list[tuple[float, float]]) -> str:
    return ", ".join(f"{wall:.2f}" for wall, _ in runs)


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def cmd_door(args: argparse.Namespace) -> bool:
    ours: list[tuple[float, float]] = []
    floors: list[tuple[float, float]] = []
    with mock_server(args.latency) as url:
        if args.bytecode == "cached":  # fills the bytecode folder; untimed
            aiohttp_loop(args.n, args.c, url)
            door_run(args.n, args.c, url, args.client, args.preset)
        for _ in range(args.repeat):
            floors.append(aiohttp_loop(args.n, args.c, url))
            ours.append(door_run(args.n, args.c, url, args.client, args.preset))
    (best, best_cpu), (floor, floor_cpu) = min(ours), min(floors)
    ideal = math.ceil(args.n / args.c) * args.latency
    ratio = best / floor
    door = "gsm8k preset" if args.preset else "marker test"
    print(
        f"DOOR ({door}, client={args.client}, bytecode {args.bytecode}): "
        f"N={args.n} C={args.c} latency={args.latency}s"
    )
    print(f"  pytest door wall:  {best:.2f} s, CPU {best_cpu:.2f} s  (walls: {_walls(ours)})")
    print(f"  aiohttp loop wall: {floor:.2f} s, CPU {floor_cpu:.2f} s  (walls: {_walls(floors)})")
    print(f"  ideal ceil(N/C) x latency: {ideal:.2f} s; {load()}")
    limit = args.limit if args.limit is not None else (1.15 if args.latency >= 0.2 else 1.5)
    verdict = ratio <= limit
    print(f"  ratio {ratio:.3f} (target <= {limit:.2f}) {'PASS' if verdict else 'FAIL'}")
    return verdict


def cmd_cpu(args: argparse.Namespace) -> bool:
    with mock_server(0.0) as url:
        result = run_child(CPU_RUN, args.n, url, MODEL)
    n = result["n"]
    per_provider = result["provider_cpu_s"] / n * 1000
    per_runner = result["runner_cpu_s"] / n * 1000
    print(f"CPU per request, N={n}, C=32, zero latency ({load()}):")
    print(f"  provider alone: {per_provider:.3f} ms  (wall {result['provider_wall_s']:.2f} s)")
    print(f"  whole runner:   {per_runner:.3f} ms  (wall {result['runner_wall_s']:.2f} s)")
    verdict = per_runner <= 1.0
    print(f"  target <= 1 ms per request (runner) {'PASS' if verdict else 'FAIL'}")
    return verdict


def cmd_t3(args: argparse.Namespace) -> bool:
    n, c, latency = 2000, 256, 2.0
    bound = math.ceil(n / c) * latency
    with mock_server(latency) as url:
        result = run_child(WARM_EVALUATE, n, c, url, MODEL, HERE)
    if result["errors"] or result["n"] != n:
        raise SystemExit(f"T3 run incomplete: {result}")
    ratio = result["wall"] / bound
    print(f"T3 native: N={n} C={c} latency={latency}s ({load()})")
    print(f"  generation phase (evaluate(), start-up excluded): {result['wall']:.2f} s")
    print(f"  bound ceil(N/C) x latency: {bound:.2f} s; litellm imported: {result['litellm']}")
    verdict = ratio <= 1.10
    print(f"  ratio {ratio:.3f} (target <= 1.10) {'PASS' if verdict else 'FAIL'}")
    return verdict


MODULES_CONFTEST = """
import sys

def pytest_sessionfinish(session):
    ours = [name for name in sys.modules if name.split(".")[0] == "pytest_themis"]
    with open("modules.txt", "w") as fh:
        fh.write(str(len(ours)))
"""


def cmd_phases(args: argparse.Namespace) -> bool:
    from pytest_themis.testing import FaultPlan, OpenAIServer

    print(f"PHASES (marker test, client={args.client}, bytecode {args.bytecode}): ", end="")
    print(f"N={args.n} C={args.c} ", end="")
    print(f"latency={args.latency}s ({load()})")
    with tempfile.TemporaryDirectory() as tmp, OpenAIServer(FaultPlan(latency=args.latency)) as s:
        root = Path(tmp)
        cmd = door_command(root, args.n, args.c, s.url, args.client, preset=False)
        (root / "conftest.py").write_text(MODULES_CONFTEST)
        if args.bytecode == "cached":  # fills the bytecode folder; untimed
            timed_door([*cmd, f"--themis-cache-dir={root / 'warm-up'}"], root)
        for label in ("cold", "cached"):
            s.reset_stats()
            start = time.monotonic()
            wall, cpu = timed_door(cmd, root)
            end = time.monotonic()
            modules = (root / "modules.txt").read_text()
            arrivals = [t for t, _, _ in s.stats.arrivals]
            line = f"  {label}: wall {wall:.2f} s, CPU {cpu:.2f} s, {modules} package modules"
            if arrivals:
                line += (
                    f"; start to first request {arrivals[0] - start:.2f} s, first to last "
                    f"{arrivals[-1] - arrivals[0]:.2f} s, last request to exit "
                    f"{end - arrivals[-1]:.2f} s"
                )
            print(line + f"; {len(arrivals)} requests")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    door = sub.add_parser("door", help="pytest door vs a plain aiohttp loop (whole process)")
    door.add_argument("--n", type=int, default=1000)
    door.add_argument("--c", type=int, default=32)
    door.add_argument("--latency", type=float, default=0.2)
    door.add_argument("--client", choices=("native", "litellm", "auto"), default="native")
    door.add_argument("--preset", action="store_true", help="use --themis-preset=gsm8k")
    door.add_argument("--repeat", type=int, default=1, help="alternate runs, report the best")
    door.add_argument("--limit", type=float, default=None, help="ratio target")
    cpu = sub.add_parser("cpu", help="client CPU per request")
    cpu.add_argument("--n", type=int, default=2000)
    sub.add_parser("t3", help="N=2000 C=256 latency 2 s generation phase vs its bound")
    phases = sub.add_parser("phases", help="where a door run spends its time")
    phases.add_argument("--n", type=int, default=1000)
    phases.add_argument("--c", type=int, default=32)
    phases.add_argument("--latency", type=float, default=0.2)
    phases.add_argument("--client", choices=("native", "litellm", "auto"), default="native")
    for command in (door, phases):
        command.add_argument(
            "--bytecode",
            choices=("cached", "off"),
            default="cached",
            help="time processes with their bytecode cached (default) or never written",
        )
    args = parser.parse_args()
    commands = {"door": cmd_door, "cpu": cmd_cpu, "t3": cmd_t3, "phases": cmd_phases}
    with tempfile.TemporaryDirectory() as folder:
        set_bytecode(getattr(args, "bytecode", "off"), folder)
        ok = commands[args.what](args)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
