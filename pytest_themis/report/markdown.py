"""A Markdown summary of a run for CI (``--themis-md``, ``$GITHUB_STEP_SUMMARY``)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..comparison.results import Comparison

__all__ = ["format_markdown"]


def _num(value: Any, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _metric(name: str, agg: Mapping[str, Any], total: int) -> str:
    if not agg.get("count"):
        return f"{name}: all {total} failed"
    return f"{name} {_num(agg.get('mean'))} [{_num(agg.get('ci_low'))}, {_num(agg.get('ci_high'))}]"


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
        metrics = "; ".join(_metric(n, a, total) for n, a in (r.get("metrics") or {}).items())
        gates = "; ".join(
            f"{'✅' if g.get('passed') else '❌'} {g.get('metric') or ''} "
            f"{_num(g.get('compared'))} ≥ {float(g.get('threshold') or 0):g}".replace("  ", " ")
            for g in r.get("gates") or ()
        )
        lines.append(
            f"| {_cell_text(str(r.get('experiment')))} [{_cell_text(str(r.get('cell_id')))}] "
            f"| {_cell_text(metrics or '–')} | {total} | {r.get('errors', 0)} | {gates or '–'} |"
        )
    if comparison is not None:
        lines += [
            "",
            f"**vs baseline `{comparison.baseline_run_id}`** (margin {comparison.margin:g}): "
            f"**{comparison.verdict}**",
            "",
            "| cell | metric | Δ | 95% CI | p (Holm) | n | verdict |",
            "|---|---|--:|---|--:|--:|---|",
        ]
        for cell in comparison.cells:
            for m in cell.metrics.values():
                lines.append(
                    f"| {_cell_text(cell.experiment)} [{_cell_text(cell.cell_id)}] | {m.metric} "
                    f"| {_num(m.difference, True)} | [{_num(m.ci_low, True)}, "
                    f"{_num(m.ci_high, True)}] | {_num(m.p_adjusted)} | {m.pairs} | {m.verdict} |"
                )
    return "\n".join(lines) + "\n"
