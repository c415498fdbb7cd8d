"""SVG bar charts of a run's cells: one chart per metric, a bar per cell with its 95% CI."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .formatting import cell_label, interval, number

__all__ = ["chart_svg", "charts", "combined_svg", "metric_names"]

_WIDTH, _LABEL, _ROW, _TOP = 640, 240, 24, 28


def metric_names(cells: Sequence[Mapping[str, Any]]) -> list[str]:
    """Metric names in first-seen order over the cells."""
    return list(dict.fromkeys(name for c in cells for name in c.get("metrics") or {}))


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def chart_svg(metric: str, cells: Sequence[Mapping[str, Any]]) -> str:
    """One horizontal bar per cell (``rect.bar``), a CI whisker (``line.ci``) where known.

    A cell without a score (every sample failed) gets an empty bar labelled "no score".
    """
    stats: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = [
        (c, c["metrics"][metric]) for c in cells if metric in (c.get("metrics") or {})
    ]
    top = max([1.0] + [v for _, a in stats for v in [_finite(a.get("ci_high"))] if v is not None])
    plot = _WIDTH - _LABEL - 70
    height = _TOP + _ROW * len(stats) + 24

    def x(value: float) -> float:
        return _LABEL + plot * max(0.0, value) / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{_WIDTH}" '
        f'height="{height}" viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" '
        f'font-size="12" role="img" aria-label="{escape(metric)} by cell">',
        f'<text x="4" y="16" font-weight="bold">{escape(metric)} (mean, 95% CI)</text>',
    ]
    for tick in (0.0, top / 2, top):
        parts.append(
            f'<line x1="{x(tick):.1f}" y1="{_TOP - 4}" x2="{x(tick):.1f}" '
            f'y2="{height - 20}" stroke="#ddd"/>'
            f'<text x="{x(tick):.1f}" y="{height - 6}" text-anchor="middle" fill="#666">'
            f"{tick:.2g}</text>"
        )
    for i, (cell, agg) in enumerate(stats):
        y = _TOP + i * _ROW
        label = cell_label(cell.get("experiment"), cell.get("cell_id"))
        mean, low, high = (_finite(agg.get(k)) for k in ("mean", "ci_low", "ci_high"))
        shown = label if len(label) <= 38 else "…" + label[-37:]
        parts.append(
            f'<text x="{_LABEL - 6}" y="{y + 15}" text-anchor="end">{escape(shown)}</text>'
        )
        width = x(mean) - _LABEL if mean is not None else 0.0
        text = number(mean, missing="no score")
        if mean is not None and low is not None and high is not None:
            text += f" {interval(low, high)}"
        parts.append(
            f'<rect class="bar" x="{_LABEL}" y="{y + 4}" width="{width:.1f}" height="{_ROW - 8}" '
            f'fill="#4a7fb5"><title>{escape(label)}: {escape(metric)} {text}</title></rect>'
        )
        if low is not None and high is not None:
            mid = y + _ROW / 2
            parts.append(
                f'<line class="ci" x1="{x(low):.1f}" y1="{mid}" x2="{x(high):.1f}" y2="{mid}" '
                f'stroke="#222"/><line x1="{x(low):.1f}" y1="{mid - 5}" x2="{x(low):.1f}" '
                f'y2="{mid + 5}" stroke="#222"/><line x1="{x(high):.1f}" y1="{mid - 5}" '
                f'x2="{x(high):.1f}" y2="{mid + 5}" stroke="#222"/>'
            )
        end = max(x(high) if high is not None else 0.0, _LABEL + width)
        parts.append(f'<text x="{end + 6:.1f}" y="{y + 15}" fill="#333">{escape(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def charts(cells: Sequence[Mapping[str, Any]]) -> list[str]:
    """One SVG per metric of ``cells`` (manifest cell entries)."""
    return [chart_svg(name, cells) for name in metric_names(cells)]


def combined_svg(cells: Sequence[Mapping[str, Any]]) -> str:
    """All metric charts stacked in one standalone SVG document (``--themis-plot``)."""
    blocks = charts(cells)
    y, inner = 0, []
    for block in blocks:
        height = int(block.split('height="', 1)[1].split('"', 1)[0])
        inner.append(f'<g transform="translate(0,{y})">{block}</g>')
        y += height + 10
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{max(y, 1)}" '
        f'viewBox="0 0 {_WIDTH} {max(y, 1)}">' + "".join(inner) + "</svg>\n"
    )
