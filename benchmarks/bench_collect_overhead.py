"""Collection overhead of the installed plugin on a suite that does not use it.

Writes 500 plain tests to a temporary folder and times whole ``pytest --co`` processes with the
plugin loaded and with ``-p no:themis``, alternating runs to share any machine noise. Prints the
median wall time of each and their ratio (target: <= 1.05).

    python benchmarks/bench_collect_overhead.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.05


def write_suite(root: Path, files: int = 10, per_file: int = 50) -> None:
    for f in range(files):
        body = [f"def test_case_{f}_{i}():\n    assert {i} + 1 > {i}\n" for i in range(per_file)]
        (root / f"test_plain_{f}.py").write_text("\n\n".join(body))
    (root / "pytest.ini").write_text("[pytest]\n")


def time_run(root: Path, extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *extra]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or "500 tests collected" not in done.stdout:
        raise SystemExit(f"pytest --co failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per variant")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_suite(root)
        time_run(root, [])  # warm up: bytecode caches, file system
        time_run(root, ["-p", "no:themis"])
        with_plugin: list[float] = []
        without: list[float] = []
        for _ in range(args.runs):
            with_plugin.append(time_run(root, []))
            without.append(time_run(root, ["-p", "no:themis"]))
    on, off = statistics.median(with_plugin), statistics.median(without)
    ratio = on / off
    best_ratio = min(with_plugin) / min(without)
    print(f"pytest --co, 500 plain tests, {args.runs} alternating runs per variant")
    print(f"  with plugin   : median {on * 1000:.1f} ms   best {min(with_plugin) * 1000:.1f} ms")
    print(f"  -p no:themis  : median {off * 1000:.1f} ms   best {min(without) * 1000:.1f} ms")
    verdict = "OK" if ratio <= TARGET_RATIO else "ABOVE TARGET"
    print(
        f"  ratio         : median {ratio:.3f}   best {best_ratio:.3f}   "
        f"(target <= {TARGET_RATIO}) {verdict}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
