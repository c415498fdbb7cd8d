"""A Markdown summary of a run for CI (``--themis-md``, ``$GITHUB_STEP_SUMMARY``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .formatting import COMPARISON_HEADER, cell_label, comparison_rows, metric_text, number

if TYPE_CHECKING:  # pragma: no cover
    from ..comparison.results import Comparison

__all__ = ["format_markdown"]


def _cell_text(text: str) -> str:
    return text.replace("|", "\\|")


def format_markdown(
    results: Iterable[Mapping[str, Any]],
    *,
    run_id: str,
    comparison: Comparison | None = None,
) -> str:
    """Cells with metrics (95% CI), gates and counts; then the verdicts against a baseline."""
    lines = [f"### themis run `{run_id}`", ""]
    lines += ["| cell | metrics (95% CI) | n | errors | gates |", "|---|---|--:|--:|---|"]
    for r in results:
        total = int(r.get("total") or 0)
        metrics = "; ".join(metric_text(n, a, total) for n, a in (r.get("metrics") or {}).items())
        gates = "; ".join(
            f"{'✅' if g.get('passed') else '❌'} {g.get('metric') or ''} "
            f"{number(g.get('compared'))} ≥ {float(g.get('threshold') or 0):g}".replace("  ", " ")
            for g in r.get("gates") or ()
        )
        lines.append(
            f"| {_cell_text(cell_label(r.get('experiment'), r.get('cell_id')))} "
            f"| {_cell_text(metrics or '–')} | {total} | {r.get('errors', 0)} | {gates or '–'} |"
        )
    if comparison is not None:
        lines += [
            "",
            f"**vs baseline `{comparison.baseline_run_id}`** (margin {comparison.margin:g}): "
            f"**{comparison.verdict}**",
            "",
            f"| {' | '.join(COMPARISON_HEADER)} |",
            "|---|---|--:|---|--:|--:|---|",
        ]
        lines += [
            f"| {_cell_text(label)} | {' | '.join(rest)} |"
            for label, *rest in comparison_rows(comparison)
        ]
    return "\n".join(lines) + "\n"
