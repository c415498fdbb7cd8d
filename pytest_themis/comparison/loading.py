"""Loading a recorded run: a manifest or ``runs/<id>.json`` file, a run id kept in a store, or
``latest``. The one loader behind ``--themis-baseline``, ``compare(baseline=…)`` and ``themis``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .compare import RunData
from .samples import load_stored_run, read_jsonl

__all__ = ["load_run", "read_run_file"]

#: What to do about a run that cannot be found, for ``role="run"``.
RUN_HINT = "pass a manifest path, a run id of an earlier run or 'latest'"


def load_run(
    spec: Any,
    storage: Any = None,
    *,
    latest_manifest: Path | None = None,
    role: str = "run",
    hint: str = RUN_HINT,
) -> RunData:
    """Resolve ``spec`` to a run, or raise a :class:`ConfigurationError` saying why not.

    ``spec``: a path to a manifest or ``runs/<run_id>.json`` file (which must reference its
    samples file); a run id kept in ``storage``; or ``latest`` (the manifest at
    ``latest_manifest`` when it exists, else the last run kept in ``storage``). ``role`` names
    the run in messages (``baseline``, ``run``) and ``hint`` says what to do when it is unknown.
    ``storage`` is touched only when ``spec`` is not a file.
    """
    if not isinstance(spec, (str, os.PathLike)) or not str(spec).strip():
        raise ConfigurationError(
            f"{role} must be a manifest path, a run id or 'latest', got {spec!r}"
        )
    text = str(spec).strip()
    if text == "latest" and latest_manifest is not None and latest_manifest.is_file():
        return read_run_file(latest_manifest, role)
    path = Path(os.path.expanduser(text))
    if text != "latest" and path.is_file():
        return read_run_file(path, role)
    if any(sep in text for sep in ("/", "\\", os.sep)) or text.endswith((".json", ".jsonl")):
        raise ConfigurationError(f"{role} file {text} does not exist")
    found = load_stored_run(storage, text) if storage is not None else None
    if found is None:
        if text == "latest":
            raise ConfigurationError(f"{role} 'latest': no earlier run is recorded here; {hint}")
        raise ConfigurationError(
            f"{role} {text!r} is neither a file nor a run id kept in the store; {hint}"
        )
    manifest, rows = found
    run_id = manifest.get("run_id") if text == "latest" else None  # a stored run: its key
    return RunData(str(run_id or text), manifest, rows)


def read_run_file(path: Path, role: str = "run") -> RunData:
    """A run from its manifest (or ``runs/<id>.json``) file and the samples file it references,
    checked against the SHA-256 the manifest recorded."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigurationError(f"{role} {path} is not a themis manifest: {exc}") from None
    if not isinstance(manifest, dict) or "cells" not in manifest or "run_id" not in manifest:
        raise ConfigurationError(
            f"{role} {path} is not a themis manifest (no run_id/cells); pass the "
            "manifest.json or runs/<run_id>.json an earlier run wrote"
        )
    ref = manifest.get("samples")
    if not isinstance(ref, dict) or not ref.get("path"):
        raise ConfigurationError(
            f"{role} {path} has no per-sample results; rerun it with this version so it "
            "records them"
        )
    samples_path = Path(str(ref["path"]))
    if not samples_path.is_absolute():
        samples_path = path.parent / samples_path
    try:
        rows, digest = read_jsonl(samples_path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigurationError(
            f"{role} {path}: its per-sample results {samples_path} cannot be read: {exc}"
        ) from None
    if ref.get("sha256") and ref["sha256"] != digest:
        raise ConfigurationError(
            f"{role} {path}: {samples_path} changed since the manifest was written "
            "(SHA-256 differs); use the samples file of that run"
        )
    return RunData(str(manifest["run_id"]), manifest, rows)
