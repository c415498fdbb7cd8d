"""Defaults shared by both doors (``evaluate()`` and the pytest plugin), defined once."""

from __future__ import annotations

__all__ = [
    "AUTO_PARALLEL_CEILING",
    "CACHE_MODES",
    "DEFAULT_CACHE_DIR",
    "DEFAULT_CACHE_MODE",
    "DEFAULT_MAX_PARALLEL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
]

#: Generation cache folder (relative to the working directory / pytest rootdir).
DEFAULT_CACHE_DIR = ".themis_cache"
#: ``use`` reads and writes, ``refresh`` overwrites, ``off`` neither, ``replay`` only reads.
CACHE_MODES = ("use", "refresh", "off", "replay")
DEFAULT_CACHE_MODE = "use"
#: Concurrent requests, retries per request and per-request timeout in seconds.
DEFAULT_MAX_PARALLEL = 16
DEFAULT_MAX_RETRIES = 3
DEFAULT_TIMEOUT = 60.0
#: Upper bound of one ``max_parallel="auto"`` window spanning worker processes or a cluster.
AUTO_PARALLEL_CEILING = 256
