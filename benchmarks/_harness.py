"""Shared pieces for the benchmark scripts: the mock server process, the floor, timing."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ENV = {
    **os.environ,
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}


@contextlib.contextmanager
def mock_server(latency: float, max_concurrency: int | None = None) -> Iterator[str]:
    """Start the OpenAI-compatible mock server in its own process; yield its base URL."""
    cmd = [
        sys.executable,
        "-m",
        "pytest_themis.testing.openai_server",
        "--port",
        "0",
        "--latency",
        str(latency),
    ]
    if max_concurrency is not None:
        cmd += ["--max-concurrency", str(max_concurrency)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1"):
            raise RuntimeError(f"mock server did not start: {url!r}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


FLOOR_SCRIPT = r"""
import asyncio, json, os, sys, time, resource
n, c, url, model = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
import litellm
async def main():
    sem = asyncio.Semaphore(c)
    async def one(i):
        async with sem:
            r = await litellm.acompletion(
                model=model, api_base=url, api_key="sk-bench",
                messages=[{"role": "user", "content": f"Question {i}: what is {i} + {i}?"}],
                temperature=0.0, max_tokens=64, num_retries=0)
            return r.choices[0].message.content
    t = time.perf_counter()
    out = await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - t, len(out)
loop_s, count = asyncio.run(main())
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"loop_s": loop_s, "count": count, "cpu_s": ru.ru_utime + ru.ru_stime}))
"""


#: The model name the benchmarks send to the mock server. litellm prices every call; a name it
#: has no price for takes its slower lookup path (see ``profile_litellm_call.py``), so the
#: default is the conservative case and ``--model openai/gpt-4o-mini`` the usual one.
DEFAULT_MODEL = "openai/mock"


def run_child(script: str, *args: object) -> dict[str, Any]:
    """Run ``python -c script args`` with :data:`ENV`; return the JSON object it prints last."""
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_floor(n: int, c: int, url: str, model: str = DEFAULT_MODEL) -> dict[str, float]:
    """A plain asyncio loop over litellm.acompletion with a semaphore, in a fresh process."""
    start = time.perf_counter()
    result = run_child(FLOOR_SCRIPT, n, c, url, model)
    result["wall_s"] = time.perf_counter() - start
    return result


def question_rows(n: int) -> list[dict[str, Any]]:
    """``n`` arithmetic questions with their answers (``q`` / ``gold``)."""
    return [
        {"id": i, "q": f"Question {i}: what is {i} + {i}?", "gold": str(2 * i)} for i in range(n)
    ]


def warmed_up(
    url: str, model: str, processes: int | None = None, **settings: Any
) -> dict[str, Any]:
    """``evaluate()`` arguments for :func:`question_rows`, after the pytest door's start-up.

    As the plugin does for litellm runs, the worker processes start (and import litellm) first;
    a few untimed rows then finish every import and open the pool, so what is timed next is
    generation, not start-up. ``processes`` overrides the pool size (default: one per core).
    """
    os.environ.update({k: v for k, v in ENV.items() if k.startswith(("LITELLM", "HF_"))})
    from pytest_themis import evaluate
    from pytest_themis.generation import pool

    pool.prestart(processes or pool.default_processes())
    common = dict(
        model=model,
        api_base=url,
        prompt="{q}",
        reference_field="gold",
        metrics=["contains"],
        **settings,
    )
    evaluate(dataset=question_rows(8), storage=None, **common)
    return common


#: ``python -m pytest`` quietly, without the cache plugin (no .pytest_cache writes in timed runs).
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


def write_gsm8k_jsonl(path: Path, n: int) -> None:
    with path.open("w") as fh:
        for i in range(n):
            fh.write(
                json.dumps(
                    {
                        "question": f"Question {i}: what is {i} + {i}?",
                        "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}",
                    }
                )
                + "\n"
            )


def run_timed(
    cmd: Sequence[str], cwd: Path | None = None
) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(list(cmd), capture_output=True, text=True, env=ENV, cwd=cwd)
    return time.perf_counter() - start, done


def child_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
