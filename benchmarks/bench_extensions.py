"""Start-up cost of the extension registry: the first preset/metric/provider lookup of a process.

Each run is a fresh interpreter that has already imported what a pytest run has (pytest,
``importlib.metadata``) and the registry modules, then times ``extensions.plugin_manager()``
(entry-point scan of group ``pytest_themis`` + built-in registration) and the collection of all
five tables. Prints the median and range over ``--runs`` processes.

    python benchmarks/bench_extensions.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

PROBE = """
import json, time
import importlib.metadata, pytest
import pytest_themis.backends, pytest_themis.evaluation.registry, pytest_themis.presets
import pytest_themis.providers.base
start = time.perf_counter()
from pytest_themis.extensions import KINDS, plugin_manager, registered
plugin_manager()
manager = time.perf_counter() - start
for kind in KINDS:
    registered(kind)
print(json.dumps({"manager": manager, "total": time.perf_counter() - start}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    samples = []
    for _ in range(args.runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
        ).stdout
        samples.append(json.loads(out))
    for key in ("manager", "total"):
        values = sorted(s[key] * 1e3 for s in samples)
        print(
            f"{key:8s} median {statistics.median(values):6.1f} ms "
            f"(min {values[0]:.1f}, max {values[-1]:.1f}) over {len(values)} processes"
        )
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
