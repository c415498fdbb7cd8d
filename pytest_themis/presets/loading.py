"""Reading dataset files and Hub datasets through ``datasets``, with errors that say the fix.

``datasets`` is imported inside the functions, never at module import.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import ConfigurationError, DatasetError

__all__ = [
    "DATA_DIR_ENV",
    "LOCAL_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "check_limit",
    "file_fingerprint",
    "hub_offline_reason",
    "load_from_hub",
    "load_local_file",
    "local_copy_hint",
    "resolve_data_dir",
]

DATA_DIR_ENV = "THEMIS_DATA_DIR"
#: Suffixes looked for in a data directory, in order of preference.
LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")
#: Suffixes :func:`load_local_file` accepts, mapped to the ``datasets`` builder that reads them.
SUPPORTED_SUFFIXES = {
    ".jsonl": "json",
    ".json": "json",
    ".parquet": "parquet",
    ".csv": "csv",
}
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_PROBE_TIMEOUT = 2.0


def check_limit(limit: Any) -> int | None:
    """Validate a row ``limit``: ``None`` or an integer >= 0."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise ConfigurationError(
            f"limit must be a non-negative integer or None, got {limit!r} ({type(limit).__name__})"
        )
    if limit < 0:
        raise ConfigurationError(
            f"limit must be >= 0, got {limit}; pass None (or omit it) to load every row"
        )
    return limit


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path | None:
    """``data_dir`` if given, else ``$THEMIS_DATA_DIR`` if set, else ``None``."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(env).expanduser() if env else None


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the file's bytes (recorded in manifests)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Local files
# --------------------------------------------------------------------------------------------


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DatasetError(
            f"dataset file {str(path)!r} is not valid UTF-8 (line {line}, byte {exc.start}); "
            "re-save it with UTF-8 encoding"
        ) from None


def _scan_json_lines(path: Path, text: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"dataset file {str(path)!r} line {number} is not valid JSON ({exc.msg} at "
                f"column {exc.colno}); each line must be one complete JSON object — the file "
                "may be truncated"
            ) from None
        if not isinstance(value, dict):
            raise DatasetError(
                f"dataset file {str(path)!r} line {number} is a JSON {type(value).__name__}, "
                "not an object; each line must be one JSON object of fields"
            )
        rows.append(value)
    if not rows:
        raise DatasetError(f"dataset file {str(path)!r} has no rows; add at least one JSON object")
    return rows


def _read_json(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON array or JSON lines file, errors naming the line.

    Read with the standard library: a local copy loads without importing ``datasets`` (seconds).
    """
    text = _decode(path)
    if not text.strip():
        raise DatasetError(f"dataset file {str(path)!r} is empty; add at least one row")
    if path.suffix.lower() == ".json" and text.lstrip()[:1] in ("[", "{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            pass  # maybe JSON lines in a .json file; the line scan reports the bad line
        else:
            if isinstance(value, list):
                bad = next((i for i, v in enumerate(value) if not isinstance(v, dict)), None)
                if bad is not None or not value:
                    raise DatasetError(
                        f"dataset file {str(path)!r} must be a non-empty JSON array of objects "
                        f"(item {bad} is not an object)"
                        if bad is not None
                        else f"dataset file {str(path)!r} is an empty JSON array; add rows"
                    )
                return value
            if isinstance(value, dict) and len(text.strip().splitlines()) > 1:
                raise DatasetError(
                    f"dataset file {str(path)!r} holds one JSON object; write a JSON array of "
                    "row objects, or JSON lines (one object per line, suffix .jsonl)"
                )
    return _scan_json_lines(path, text)


def _same_fields(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every row with every field seen in the file (absent ones None), as ``datasets`` reads it."""
    fields: dict[str, None] = {}
    for row in rows:
        fields.update(dict.fromkeys(row))
    if all(len(row) == len(fields) for row in rows):
        return rows
    return [{name: row.get(name) for name in fields} for row in rows]


def _root_message(exc: BaseException) -> str:
    """The innermost useful message of an exception chain (``datasets`` wraps the real cause)."""
    messages = []
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).strip()
        if text:
            messages.append(f"{type(current).__name__}: {text}")
        current = current.__cause__ or current.__context__
    return messages[-1] if messages else type(exc).__name__


def load_local_file(
    path: str | os.PathLike[str],
    *,
    limit: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """Rows of a local ``.jsonl``/``.json``/``.parquet``/``.csv`` file (JSON with the standard
    library, the others with ``datasets``).

    ``limit`` keeps the first N rows. Errors are :class:`DatasetError` naming the file (and the
    line for JSON files).
    """
    limit = check_limit(limit)
    file = Path(path).expanduser()
    suffix = file.suffix.lower()
    builder = SUPPORTED_SUFFIXES.get(suffix)
    if builder is None:
        raise DatasetError(
            f"dataset file {str(file)!r} has an unsupported suffix {suffix or '(none)'!r}; "
            f"use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not file.is_file():
        what = "is a directory, not a file" if file.is_dir() else "does not exist"
        raise DatasetError(f"dataset file {str(file)!r} {what}; check the path")
    if builder == "json":
        rows = _same_fields(_read_json(file))
        return rows if limit is None else rows[:limit]

    import datasets

    bars_were_on = not datasets.are_progress_bars_disabled()
    try:
        if bars_were_on:
            datasets.disable_progress_bars()  # reading a local file needs no progress bar
        loaded = datasets.load_dataset(
            builder,
            data_files=str(file.resolve()),
            split="train",
            cache_dir=str(cache_dir) if cache_dir is not None else None,
        )
    except Exception as exc:
        raise DatasetError(
            f"could not read dataset file {str(file)!r}: {_root_message(exc)}; check that it is "
            f"a valid {suffix[1:]} file whose rows share the same fields and types"
        ) from exc
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()
    if limit is not None and limit < len(loaded):
        loaded = loaded.select(range(limit))
    return [dict(row) for row in loaded.to_list()]


# --------------------------------------------------------------------------------------------
# The Hugging Face Hub
# --------------------------------------------------------------------------------------------


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in ("1", "ON", "YES", "TRUE")


def hub_offline_reason() -> str | None:
    """Why the Hub cannot be used right now (offline env var set), or ``None``."""
    for name in _OFFLINE_VARS:
        if _truthy(os.environ.get(name)):
            return f"{name}={os.environ[name]} is set"
    return None


def _probe_hub(timeout: float = _PROBE_TIMEOUT) -> str | None:
    """Open one TCP connection to the Hub endpoint; return why it failed, or ``None``."""
    endpoint = os.environ.get("HF_ENDPOINT", "").strip() or "https://huggingface.co"
    parsed = urlparse(endpoint)
    host = parsed.hostname
    if not host:
        return f"HF_ENDPOINT={endpoint!r} is not a URL"
    port = parsed.port or (443 if parsed.scheme != "http" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"{host}:{port} is unreachable ({type(exc).__name__}: {exc})"


def local_copy_hint(name: str, fields: Sequence[str]) -> str:
    """How to point a preset at a local copy instead of the Hub."""
    return (
        f"To run without the Hub, put a copy of the dataset in a directory as '{name}.jsonl' "
        f"(or .json/.parquet) with the dataset's own fields ({', '.join(fields)}) and pass "
        f"--themis-data-dir=DIR, set {DATA_DIR_ENV}=DIR, or call load(data_dir=DIR)."
    )


def load_from_hub(
    *,
    name: str,
    source: str,
    config: str | None,
    split: str,
    revision: str | None,
    fields: Sequence[str],
) -> list[dict[str, Any]]:
    """Download (or reuse the cached copy of) ``source`` — failing fast when offline."""
    hint = local_copy_hint(name, fields)
    where = f"{source}" + (f" (config {config!r})" if config else "") + f", split {split!r}"
    reason = hub_offline_reason()

    import datasets

    if reason is not None:
        if not getattr(datasets.config, "HF_HUB_OFFLINE", False):
            # The variable was set after ``datasets`` was imported, so ``datasets`` would still
            # go to the network: stop here instead.
            raise DatasetError(
                f"benchmark {name!r} needs {where} from the Hugging Face Hub, but {reason}. " + hint
            )
    else:
        unreachable = _probe_hub()
        if unreachable is not None:
            raise DatasetError(
                f"benchmark {name!r} needs {where} from the Hugging Face Hub, but {unreachable}. "
                + hint
            )
    try:
        loaded = datasets.load_dataset(
            source,
            config,
            split=split,
            revision=revision,
            download_config=datasets.DownloadConfig(max_retries=0),
        )
    except Exception as exc:
        offline = f" ({reason}; only cached copies can be used)" if reason else ""
        raise DatasetError(
            f"benchmark {name!r}: could not load {where} from the Hugging Face Hub{offline}: "
            f"{_root_message(exc)}. " + hint
        ) from exc
    return [dict(row) for row in loaded.to_list()]
