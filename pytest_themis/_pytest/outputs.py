"""The run's optional outputs: ``--themis-html``, ``--themis-md`` (and the GitHub step summary),
``--themis-plot``. Written by the controller at session end, after the samples are kept."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..comparison.results import Comparison
    from .state import ThemisState

__all__ = ["write_outputs"]

_STEP_SUMMARY = "GITHUB_STEP_SUMMARY"


def write_outputs(
    state: ThemisState,
    manifest: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    comparison: Comparison | None,
    baseline_rows: Sequence[Mapping[str, Any]] | None,
) -> None:
    """Write whichever of the HTML report, Markdown summary and SVG plot were asked for."""
    options = state.options
    written: list[str] = []
    if options.html_path is not None:
        from ..report.html import write_html

        write_html(
            options.html_path, manifest, rows, comparison=comparison, baseline_samples=baseline_rows
        )
        written.append(f"themis html report: {options.html_path}")
    summary = os.environ.get(_STEP_SUMMARY)
    if options.md_path is not None or summary:
        from ..report.markdown import format_markdown

        results = sorted(state.results.values(), key=lambda r: (r["experiment"], r["cell_id"]))
        text = format_markdown(results, run_id=state.run_id, comparison=comparison)
        if options.md_path is not None:
            options.md_path.parent.mkdir(parents=True, exist_ok=True)
            options.md_path.write_text(text, encoding="utf-8")
            written.append(f"themis markdown summary: {options.md_path}")
        if summary:
            with open(summary, "a", encoding="utf-8") as out:
                out.write(text)
    if options.plot_path is not None:
        from ..report.chart import combined_svg

        target = Path(options.plot_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(combined_svg(manifest.get("cells") or []), encoding="utf-8")
        written.append(f"themis plot: {target}")
    state.output_lines = written
