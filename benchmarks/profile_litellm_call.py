"""Where a ``litellm.acompletion`` call spends its CPU (the profile behind T3 and T9 at 0.2 s).

Runs N calls at concurrency C against the mock server, first unprofiled (CPU per call from
``getrusage``), then under cProfile, and prints the share of the profiled time spent in each
part of litellm's call path. No pytest-themis code runs here: this is the client library alone.

    python benchmarks/profile_litellm_call.py [--n 1000] [--c 32] [--model openai/mock]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import resource
import sys
import time

from _harness import ENV, mock_server

#: (label, function name as cProfile reports it: "file.py:line(name)" suffix match on path/name)
PARTS = [
    ("request: OpenAI SDK + httpx + aiohttp transport", "make_openai_chat_completion_request"),
    ("response metadata + cost calculation", "update_response_metadata"),
    ("success logging (standard logging payload)", "async_success_handler"),
    ("call set-up (function_setup)", "function_setup"),
    ("response object construction", "convert_to_model_response_object"),
]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(n: int, c: int, url: str, model: str) -> None:
    import litellm

    semaphore = asyncio.Semaphore(c)

    async def one(i: int) -> None:
        async with semaphore:
            await litellm.acompletion(
                model=model,
                api_base=url,
                api_key="sk-bench",
                messages=[{"role": "user", "content": f"Question {i}: what is {i} + {i}?"}],
                max_tokens=64,
                num_retries=0,
            )

    await asyncio.gather(*(one(i) for i in range(n)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--c", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--model", default="openai/mock")
    args = parser.parse_args()
    os.environ.update({k: v for k, v in ENV.items() if k.startswith("LITELLM")})
    import litellm  # noqa: F401 - imported before timing

    with mock_server(args.latency) as url:
        asyncio.run(run(20, args.c, url, args.model))  # warm-up: clients, connections
        before, start = cpu_seconds(), time.perf_counter()
        asyncio.run(run(args.n, args.c, url, args.model))
        cpu, wall = cpu_seconds() - before, time.perf_counter() - start
        profiler = cProfile.Profile()
        profiler.enable()
        asyncio.run(run(args.n, args.c, url, args.model))
        profiler.disable()
    stats = pstats.Stats(profiler)
    entries = stats.stats  # type: ignore[attr-defined]
    # litellm's decorator around every public call: its cumulative time is the whole call
    total = max(ct for (_, _, fn), (_, _, _, ct, _) in entries.items() if fn == "wrapper_async")
    print(f"litellm.acompletion, N={args.n} C={args.c} model={args.model}")
    print(f"  unprofiled: {cpu / args.n * 1000:.2f} ms CPU per call, {args.n / wall:.0f} calls/s")
    print("  share of the profiled call time:")
    for label, name in PARTS:
        spent = sum(ct for (_, _, fn), (_, _, _, ct, _) in entries.items() if fn == name)
        print(f"    {spent / total:6.1%}  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
