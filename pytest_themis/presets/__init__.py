"""Benchmark presets: a registry of named benchmarks (``demo``, ``gsm8k``, ``math500`` …).

A preset knows its data source (Hugging Face path, config, split, pinned revision, or a file
shipped with the package), its prompt, extractor, metrics and sampling defaults. Local copies are
read from ``data_dir=`` / ``$THEMIS_DATA_DIR`` as ``<name>.jsonl`` (or ``.json``/``.parquet``).
"""

from __future__ import annotations

from .base import BenchmarkPreset, RowPreparer
from .loading import DATA_DIR_ENV, load_local_file
from .registry import (
    get_benchmark_preset,
    list_benchmarks,
    register_benchmark,
    unregister_benchmark,
)

__all__ = [
    "DATA_DIR_ENV",
    "BenchmarkPreset",
    "RowPreparer",
    "get_benchmark_preset",
    "list_benchmarks",
    "load_local_file",
    "register_benchmark",
    "unregister_benchmark",
]
