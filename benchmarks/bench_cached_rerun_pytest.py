"""Cached rerun through pytest: a fully cached gsm8k run vs ``pytest --co`` on the same folder.

Primes the cache once (``--themis-preset=gsm8k`` with a litellm model against the mock server,
rows from a local ``--themis-data-dir`` copy), then times, best of ``--repeat`` each, whole
``python -m pytest`` processes: the cached rerun and the same command with ``--co``. Everything
beyond collection (dataset load, cache lookups, scoring, table, manifest, and whatever the
prestarted worker processes cost a run that sends nothing) is the difference; the same rerun in
replay mode (which prestarts no workers) separates the last part. Target: within 1.5 s, and 0
requests on the rerun. Prints the machine load beside the figures.

    python benchmarks/bench_cached_rerun_pytest.py [--rows 1319] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from _harness import PYTEST, run_timed, write_gsm8k_jsonl

from pytest_themis.testing import OpenAIServer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1319)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, OpenAIServer() as server:
        url = server.url
        folder = Path(tmp)
        data = folder / "data"
        data.mkdir()
        write_gsm8k_jsonl(data / "gsm8k.jsonl", args.rows)
        command = [
            *PYTEST,
            "--themis-preset=gsm8k",
            "--themis-model=openai/mock",
            f"--themis-api-base={url}",
            f"--themis-data-dir={data}",
            f"--themis-cache-dir={folder / 'cache'}",
        ]
        first, done = run_timed(command, cwd=folder)
        if done.returncode not in (0, 1):
            print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)
            return 1
        primed = server.stats.request_count
        reruns, collects, replays = [], [], []
        for _ in range(args.repeat):
            seconds, done = run_timed(command, cwd=folder)
            if done.returncode not in (0, 1) or "cached" not in done.stdout:
                print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)
                return 1
            reruns.append(seconds)
            seconds, done = run_timed([*command, "--co"], cwd=folder)
            collects.append(seconds)
            # Replay mode reads the same cache but never prestarts worker processes.
            seconds, done = run_timed([*command, "--themis-cache=replay"], cwd=folder)
            replays.append(seconds)
        sent = server.stats.request_count - primed
    rerun, collect = min(reruns), min(collects)
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    print(f"rows {args.rows}: first run {first:.2f} s ({primed} requests)")
    print(f"cached rerun {rerun:.2f} s, pytest --co {collect:.2f} s (best of {args.repeat})")
    print(f"difference {rerun - collect:.2f} s (target <= 1.5 s); requests on reruns: {sent}")
    print(f"same rerun in replay mode (no worker prestart): {min(replays):.2f} s")
    return 0 if sent == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
