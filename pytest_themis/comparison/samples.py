"""Per-sample results: one JSON object per (cell, row, epoch), as JSON Lines and in the store.

A run's samples are what a later run pairs with. They are written to a JSON Lines file (whose
path and SHA-256 the manifest records) and kept in the storage backend by run id, in batches
under ``samples:<run_id>:<n>`` with an index entry ``samples:<run_id>`` holding the manifest and
the rows' :func:`samples_digest`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core.entities import EvaluationRecord
from ..core.hashing import stable_hash

__all__ = [
    "LOG_PROMPT_MODES",
    "LATEST_KEY",
    "iter_sample_rows",
    "load_stored_run",
    "mark_latest",
    "read_jsonl",
    "sample_rows",
    "rows_digest",
    "samples_digest",
    "store_run",
    "stored_digest",
    "template_hashes",
    "write_jsonl",
]

LOG_PROMPT_MODES = ("full", "hash")
LATEST_KEY = "samples:latest"
_BATCH = 500
_CHUNKS_PER_WRITE = 10


def template_hashes(manifest: Mapping[str, Any]) -> dict[str, str]:
    """Template name → content hash, from a manifest's ``templates`` section."""
    return {
        str(t.get("name")): str(t.get("sha256"))
        for t in manifest.get("templates", [])
        if isinstance(t, Mapping)
    }


def sample_rows(
    records: Iterable[EvaluationRecord],
    run_id: str,
    *,
    templates: Mapping[str, str] | None = None,
    experiment: str | None = None,
    log_prompts: str = "full",
) -> list[dict[str, Any]]:
    """One JSON-able dict per record: ids, prompt (or its hash), response, answer, scores."""
    return list(
        iter_sample_rows(
            records, run_id, templates=templates, experiment=experiment, log_prompts=log_prompts
        )
    )


def iter_sample_rows(
    records: Iterable[EvaluationRecord],
    run_id: str,
    *,
    templates: Mapping[str, str] | None = None,
    experiment: str | None = None,
    log_prompts: str = "full",
) -> Iterator[dict[str, Any]]:
    """:func:`sample_rows`, one row at a time."""
    if log_prompts not in LOG_PROMPT_MODES:
        raise ValueError(f"log_prompts must be one of {', '.join(LOG_PROMPT_MODES)}")
    templates = templates or {}
    for rec in records:
        gen = rec.generation
        task = gen.task
        messages = [dict(m) for m in task.messages]
        row: dict[str, Any] = {
            "run_id": run_id,
            "experiment": experiment,
            "cell_id": task.cell.cell_id,
            "row_id": task.row_id,
            "epoch": task.sample_index,
            "template_hash": templates.get(task.cell.template_name),
        }
        if log_prompts == "full":
            row["prompt"] = messages
        else:
            row["prompt_sha256"] = stable_hash(messages)
        row.update(
            {
                "response": gen.text,
                "extracted": rec.prediction,
                "reference": _jsonable(task.reference),
                "scores": {name: _score(s.value) for name, s in rec.scores.items()},
                "error": gen.error.kind if gen.error is not None else None,
                "cached": gen.cached,
                "tokens": (
                    {"prompt": gen.usage.prompt_tokens, "completion": gen.usage.completion_tokens}
                    if gen.usage is not None
                    else None
                ),
                "latency": round(gen.latency, 6),
            }
        )
        yield row


def _score(value: float) -> float | None:
    return None if value != value else float(value)  # NaN -> None (JSON has no NaN)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


def samples_digest(
    records: Iterable[EvaluationRecord],
    run_id: str,
    *,
    templates: Mapping[str, str] | None = None,
    experiment: str | None = None,
) -> str:
    """SHA-256 of what a run's sample rows say, apart from ``cached`` flags and latencies.

    Covers the run id, experiment, and per record the cell, row, epoch, template hash, prompt
    (the generation's cache key, which hashes the rendered messages, model and sampling),
    response, extracted answer, reference, scores, error kind and tokens. A fully cached rerun
    under the same run id has the same digest: its rows differ only in being served from the
    cache, so the stored rows of the run that produced them are kept (see ``finish_run``).
    Cheaper than building the rows: no JSON, no prompt hashing.
    """
    templates = templates or {}
    digest = hashlib.sha256(repr((run_id, experiment)).encode())
    for rec in records:
        gen = rec.generation
        task = gen.task
        usage = gen.usage
        item = (
            task.cell.cell_id,
            task.row_id,
            task.sample_index,
            templates.get(task.cell.template_name),
            task.cache_key or stable_hash(list(task.messages)),
            gen.text,
            rec.prediction,
            task.reference,
            [(name, s.value) for name, s in rec.scores.items()],
            gen.error.kind if gen.error is not None else None,
            (usage.prompt_tokens, usage.completion_tokens) if usage is not None else None,
        )
        digest.update(repr(item).encode("utf-8", "surrogatepass") + b"\x1e")
    return digest.hexdigest()


def rows_digest(rows: Iterable[Mapping[str, Any]]) -> str:
    """SHA-256 of sample rows apart from their ``cached`` flags and latencies (the content hash
    of a samples file, equal for a fully cached rerun of the same run). :func:`samples_digest`
    is the same idea over records, for ``evaluate()``, which never builds rows it does not keep."""
    digest = hashlib.sha256()
    for row in rows:
        kept = {k: v for k, v in row.items() if k not in ("cached", "latency")}
        digest.update(json.dumps(kept, sort_keys=True, default=str).encode() + b"\n")
    return digest.hexdigest()


def write_jsonl(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> str:
    """Write ``rows`` as JSON Lines (atomically); return the file's SHA-256."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows)
    body = data.encode("utf-8")
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(body)
    os.replace(tmp, target)
    return hashlib.sha256(body).hexdigest()


def read_jsonl(path: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], str]:
    """The rows of a JSON Lines file and the file's SHA-256."""
    body = Path(path).read_bytes()
    rows = [json.loads(line) for line in body.decode("utf-8").splitlines() if line.strip()]
    return rows, hashlib.sha256(body).hexdigest()


def store_run(
    storage: Any,
    run_id: str,
    manifest: Mapping[str, Any],
    rows: Iterable[Mapping[str, Any]],
    *,
    digest: str | None = None,
) -> int:
    """Keep ``rows`` and the manifest in ``storage`` under ``samples:<run_id>``; return the count.

    Rows go in entries of 500, several entries per ``set_many`` (one transaction in the stores
    that support it), so memory stays bounded for large runs. The index entry (with ``digest``,
    the rows' :func:`samples_digest`, when given) is written last: a run is never visible
    half-stored.
    """
    chunks = count = 0
    pending: list[tuple[str, dict[str, Any]]] = []
    chunk: list[Mapping[str, Any]] = []

    def close_chunk() -> None:
        nonlocal chunks, chunk
        pending.append((f"samples:{run_id}:{chunks}", {"samples": chunk}))
        chunks += 1
        chunk = []
        if len(pending) >= _CHUNKS_PER_WRITE:
            storage.set_many(pending)
            pending.clear()

    for row in rows:
        chunk.append(row)
        count += 1
        if len(chunk) >= _BATCH:
            close_chunk()
    if chunk:
        close_chunk()
    if pending:
        storage.set_many(pending)
    storage.set_many(
        [
            (
                f"samples:{run_id}",
                {"manifest": dict(manifest), "chunks": chunks, "digest": digest},
            ),
            (LATEST_KEY, {"run_id": run_id}),
        ]
    )
    return count


def mark_latest(storage: Any, run_id: str) -> None:
    """Point ``latest`` at run ``run_id`` (whose rows are already stored)."""
    storage.set(LATEST_KEY, {"run_id": run_id})


def stored_digest(storage: Any, run_id: str) -> str | None:
    """The :func:`samples_digest` recorded with run ``run_id``'s stored rows, or None."""
    index = storage.get(f"samples:{run_id}")
    return str(index["digest"]) if index and index.get("digest") else None


def load_stored_run(
    storage: Any, run_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """``(manifest, samples)`` of a run kept by :func:`store_run`, or None when absent."""
    if run_id == "latest":
        pointer = storage.get(LATEST_KEY)
        if not pointer:
            return None
        run_id = str(pointer["run_id"])
    index = storage.get(f"samples:{run_id}")
    if not index:
        return None
    keys = [f"samples:{run_id}:{i}" for i in range(int(index.get("chunks", 0)))]
    found = storage.get_many(keys)
    if len(found) != len(keys):
        return None
    rows = [row for key in keys for row in found[key]["samples"]]
    return dict(index["manifest"]), rows
