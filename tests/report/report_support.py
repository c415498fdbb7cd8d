"""A 2-model × 2-prompt fake run: what the report and ``themis`` command tests look at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_themis import evaluate


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
