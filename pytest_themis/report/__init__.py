"""Looking at results: HTML report, SVG charts, Markdown summary, run listing."""

from __future__ import annotations

from .chart import chart_svg, combined_svg
from .html import render_html, write_html

__all__ = ["chart_svg", "combined_svg", "render_html", "write_html"]
