"""A 2-model × 2-prompt fake run: what the report and ``themis`` command tests look at."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pytest_themis import evaluate
from pytest_themis.comparison.samples import load_stored_run, store_run
from pytest_themis.storage import open_storage

#: Rows per run of the ``two_runs`` fixture: 4 cells × 60 = 240 samples.
ROWS = 60
_DATA = re.compile(r'<script type="application/json" id="themis-data">(.*?)</script>', re.S)


def rows(n: int) -> list[dict[str, str]]:
    return [{"id": f"r{i}", "q": f"{i} + {3 * i}", "answer": str(4 * i)} for i in range(n)]


def sweep(store: Path, run_id: str, wrong_rate: float, n: int = 40) -> Any:
    """Models ``fake:a``/``fake:b`` × prompts ``{q}``/``Q: {q}`` on ``n`` rows into ``store``."""
    return evaluate(
        dataset=rows(n),
        model=["fake:a", "fake:b"],
        prompt=["{q}", "Q: {q}"],
        reference_field="answer",
        metrics=["exact_match"],
        storage=store,
        wrong_rate=wrong_rate,
        run_id=run_id,
    )


def copy_runs(source: Any, target: Any, run_ids: tuple[str, ...] = ("base", "new")) -> None:
    """Keep the runs ``run_ids`` of store ``source`` in store ``target`` too (URLs or folders)."""
    reader, writer = open_storage(source), open_storage(target)
    try:
        for run_id in run_ids:
            found = load_stored_run(reader, run_id)
            assert found is not None, run_id
            store_run(writer, run_id, *found)
    finally:
        reader.close()
        writer.close()


def embedded_samples(html: str) -> list[list[Any]]:
    """The per-sample rows an HTML report embeds for its browser."""
    match = _DATA.search(html)
    assert match is not None
    samples: list[list[Any]] = json.loads(match.group(1))["samples"]
    return samples
