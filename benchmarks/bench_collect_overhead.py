"""Collection overhead of the installed plugin on a suite that does not use it.

Writes 500 plain tests to a temporary folder and times whole ``pytest --co`` processes with the
plugin loaded and with ``-p no:themis``, alternating runs to share any machine noise. Prints the
median wall time of each and their ratio (target: <= 1.05) with a bootstrap 95% interval that
shows how much machine noise moves it, plus the median of the per-pair ratios and the ratio of
median CPU times.

    python benchmarks/bench_collect_overhead.py [--runs 21] [--installed]
    python benchmarks/bench_collect_overhead.py --instructions [--seeds 3] [--installed]

The bytecode setting is inherited: run it once as is and once with
``env -u PYTHONDONTWRITEBYTECODE`` (or with the variable set) to cover both.

``--installed`` runs a copy of the package laid out like a regular (wheel) install: pytest then
rewrites the asserts of every imported module of the plugin's distribution (for an editable
install it does so only when the checkout is on ``sys.path``, e.g. when run from the repository
root). ``--instructions`` replaces timing by the instruction count of one run of each variant per
hash seed under ``valgrind --tool=callgrind`` (needs valgrind; about a minute per seed), a figure
that does not move with machine load.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TARGET_RATIO = 1.05
PACKAGE = Path(__file__).resolve().parent.parent / "pytest_themis"
OFF = ["-p", "no:themis"]


def write_suite(root: Path, files: int = 10, per_file: int = 50) -> None:
    for f in range(files):
        body = [f"def test_case_{f}_{i}():\n    assert {i} + 1 > {i}\n" for i in range(per_file)]
        (root / f"test_plain_{f}.py").write_text("\n\n".join(body))
    (root / "pytest.ini").write_text("[pytest]\n")


def installed_copy(site: Path) -> None:
    """Copy the package into ``site`` with the metadata a wheel install leaves behind.

    The entry point and the file list make pytest load the plugin from here (``site`` goes first
    on ``PYTHONPATH``) and mark its modules for assertion rewriting, as for a user's install.
    """
    shutil.copytree(PACKAGE, site / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__"))
    info = site / "pytest_themis-0.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pytest-themis\nVersion: 0.0.0\n")
    (info / "entry_points.txt").write_text("[pytest11]\nthemis = pytest_themis.plugin\n")
    files = sorted(p.relative_to(site).as_posix() for p in (site / PACKAGE.name).rglob("*.py"))
    (info / "RECORD").write_text("".join(f"{name},,\n" for name in files))


def imported_from(root: Path, env: dict[str, str], site: Path) -> None:
    """Check that a process started like the benchmark's imports the package from ``site``."""
    code = "import pytest_themis; print(pytest_themis.__file__)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    if not done.stdout.strip().startswith(str(site)):
        raise SystemExit(f"the copy is not the package pytest imports: {done.stdout.strip()}")


def pytest_cmd(extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *extra]


def check(done: subprocess.CompletedProcess[str]) -> None:
    if done.returncode != 0 or "500 tests collected" not in done.stdout:
        raise SystemExit(f"pytest --co failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def time_run(root: Path, extra: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one ``pytest --co`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        pytest_cmd(extra), cwd=root, env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    check(done)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def count_instructions(root: Path, extra: list[str], env: dict[str, str], out: Path) -> int:
    """Instructions executed by one ``pytest --co`` process, counted by callgrind."""
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *pytest_cmd(extra)]
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
    check(done)
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def median_ratio_interval(
    on: list[float], off: list[float], resamples: int = 2000
) -> tuple[float, float]:
    """95% bootstrap interval of median(on) / median(off), resampling the alternating pairs."""
    rng = random.Random(0)
    pairs = list(zip(on, off, strict=True))
    ratios = []
    for _ in range(resamples):
        sample = rng.choices(pairs, k=len(pairs))
        ratios.append(
            statistics.median(a for a, _ in sample) / statistics.median(b for _, b in sample)
        )
    ratios.sort()
    return ratios[int(0.025 * resamples)], ratios[int(0.975 * resamples) - 1]


def timed(root: Path, env: dict[str, str], runs: int) -> bool:
    walls: dict[bool, list[float]] = {True: [], False: []}
    cpus: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(runs):
        for plugin in (True, False):
            wall, cpu = time_run(root, [] if plugin else OFF, env)
            walls[plugin].append(wall)
            cpus[plugin].append(cpu)
    on, off = statistics.median(walls[True]), statistics.median(walls[False])
    ratio = on / off
    low, high = median_ratio_interval(walls[True], walls[False])
    pair_ratio = statistics.median(a / b for a, b in zip(walls[True], walls[False], strict=True))
    cpu_ratio = statistics.median(cpus[True]) / statistics.median(cpus[False])
    print(f"pytest --co, 500 plain tests, {runs} alternating runs per variant")
    print(f"  with plugin   : median {on * 1000:.1f} ms   best {min(walls[True]) * 1000:.1f} ms")
    print(f"  -p no:themis  : median {off * 1000:.1f} ms   best {min(walls[False]) * 1000:.1f} ms")
    verdict = "OK" if ratio <= TARGET_RATIO else "ABOVE TARGET"
    print(
        f"  ratio         : median {ratio:.3f}   95% interval {low:.3f}-{high:.3f}   "
        f"(target <= {TARGET_RATIO}) {verdict}"
    )
    print(
        f"  also          : median of pair ratios {pair_ratio:.3f}   CPU time ratio {cpu_ratio:.3f}"
    )
    if low <= TARGET_RATIO < high:
        print("  the interval spans the target: machine noise decides; see --instructions")
    return ratio <= TARGET_RATIO


def instructions(root: Path, env: dict[str, str], scratch: Path, seeds: int) -> bool:
    """Instruction counts of both variants under a few fixed hash seeds.

    One seed repeats to the instruction; seeds differ by a garbage collection or so, hence the
    median over them.
    """
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind on PATH")
    print("pytest --co, 500 plain tests, instructions of one run per variant and hash seed")
    ratios: list[float] = []
    with ThreadPoolExecutor(2) as pool:
        for seed in range(seeds):
            seeded = {**env, "PYTHONHASHSEED": str(seed)}
            on_job = pool.submit(count_instructions, root, [], seeded, scratch / "on.out")
            off_job = pool.submit(count_instructions, root, OFF, seeded, scratch / "off.out")
            on, off = on_job.result(), off_job.result()
            ratios.append(on / off)
            print(
                f"  seed {seed}: with plugin {on / 1e6:.1f} M   -p no:themis {off / 1e6:.1f} M   "
                f"+{(on - off) / 1e6:.1f} M = {on / off:.4f}"
            )
    ratio = statistics.median(ratios)
    verdict = "OK" if ratio <= TARGET_RATIO else "ABOVE TARGET"
    print(f"  ratio         : median {ratio:.4f}   (target <= {TARGET_RATIO}) {verdict}")
    return ratio <= TARGET_RATIO


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="timed runs per variant")
    parser.add_argument(
        "--installed", action="store_true", help="run a copy laid out like a wheel install"
    )
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions under callgrind"
    )
    parser.add_argument("--seeds", type=int, default=3, help="hash seeds for --instructions")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    bytecode = "off" if env.get("PYTHONDONTWRITEBYTECODE") else "on"
    layout = "wheel-like install (copy)" if args.installed else "this interpreter's install"
    print(f"plugin: {layout}; bytecode writing {bytecode}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "suite"
        root.mkdir()
        write_suite(root)
        if args.installed:
            site = Path(tmp) / "site"
            installed_copy(site)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
            imported_from(root, env, site)
        time_run(root, [], env)  # warm up: bytecode caches (when written), file system
        time_run(root, OFF, env)
        if args.instructions:
            met = instructions(root, env, Path(tmp), args.seeds)
        else:
            met = timed(root, env, args.runs)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
