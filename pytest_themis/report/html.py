"""A self-contained HTML report of one run: header, charts, comparison, sample browser.

One file, no network: inline CSS, inline SVG charts and a small vanilla script that renders the
per-sample table from JSON embedded in a ``<script type="application/json">`` element, 50 rows a
page, with filters, text search and a drill-down. Secret-looking values are redacted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .chart import charts
from .formatting import COMPARISON_HEADER, cell_label, comparison_rows
from .redaction import redact_output, run_secrets, scrub

if TYPE_CHECKING:  # pragma: no cover
    from ..comparison.results import Comparison

__all__ = ["render_html", "write_html"]


def _wrong(scores: Mapping[str, Any]) -> bool:
    return any(v is not None and float(v) < 1.0 for v in scores.values())


def _changed_keys(
    samples: Sequence[Mapping[str, Any]],
    comparison: Comparison | None,
    baseline_samples: Sequence[Mapping[str, Any]] | None,
) -> set[tuple[str, str, int]]:
    """(cell, row, epoch) of samples whose scores differ from the paired baseline sample."""
    if comparison is None or not baseline_samples:
        return set()
    to_base = {c.cell_id: c.baseline_cell_id for c in comparison.cells}
    base = {
        (str(s["cell_id"]), str(s["row_id"]), int(s.get("epoch") or 0)): s.get("scores") or {}
        for s in baseline_samples
    }
    changed = set()
    for s in samples:
        cell = str(s["cell_id"])
        if cell not in to_base:
            continue
        key = (cell, str(s["row_id"]), int(s.get("epoch") or 0))
        old = base.get((to_base[cell], key[1], key[2]))
        if old is not None and old != (s.get("scores") or {}):
            changed.add(key)
    return changed


def _sample_json(
    samples: Sequence[Mapping[str, Any]], changed: set[tuple[str, str, int]]
) -> list[list[Any]]:
    """Compact rows: cell, row, epoch, prompt, response, extracted, reference, scores, error,
    wrong, changed (positional, to keep 10,000 samples small)."""
    out = []
    for s in samples:
        scores = s.get("scores") or {}
        prompt = s.get("prompt")
        if prompt is None and s.get("prompt_sha256"):
            prompt = f"(prompt not logged; sha256 {s['prompt_sha256']})"
        key = (str(s["cell_id"]), str(s["row_id"]), int(s.get("epoch") or 0))
        out.append(
            [
                cell_label(s.get("experiment"), s["cell_id"]),
                str(s["row_id"]),
                key[2],
                prompt,
                s.get("response"),
                s.get("extracted"),
                s.get("reference"),
                scores,
                s.get("error"),
                1 if not s.get("error") and _wrong(scores) else 0,
                1 if key in changed else 0,
            ]
        )
    return out


def _header(manifest: Mapping[str, Any], samples: int) -> str:
    env = manifest.get("environment") or {}
    git = env.get("git") or {}
    commit = str(git.get("commit") or "–")[:12]
    dirty = " (dirty)" if git.get("dirty") else ""
    packages = ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items() if v)
    datasets = "; ".join(
        f"{d.get('name') or d.get('path') or d.get('kind') or 'dataset'} "
        f"(fingerprint {str(d.get('fingerprint'))[:12]})"
        for d in manifest.get("datasets") or []
    )
    models = ", ".join(
        f"{m.get('provider')}:{m.get('identifier')}"
        + (f" {json.dumps(m['options'], sort_keys=True)}" if m.get("options") else "")
        for m in manifest.get("models") or []
        if isinstance(m, Mapping)
    )
    items = [
        ("run", manifest.get("run_id")),
        ("models", models),
        ("created", manifest.get("created_at")),
        ("git", commit + dirty),
        ("python", env.get("python")),
        ("packages", packages),
        ("datasets", datasets),
        ("samples", samples),
    ]
    body = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v or '–'))}</dd>" for k, v in items)
    return f'<dl id="run-header">{body}</dl>'


def _comparison(comparison: Comparison | None) -> str:
    if comparison is None:
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in COMPARISON_HEADER)
    rows = "".join(
        f'<tr class="v-{escape(row[-1])}">{"".join(f"<td>{escape(v)}</td>" for v in row)}</tr>'
        for row in comparison_rows(comparison)
    )
    return (
        f"<h2>vs baseline {escape(comparison.baseline_run_id)} (margin {comparison.margin:g}) — "
        f'{escape(comparison.verdict)}</h2><table id="comparison"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def render_html(
    manifest: Mapping[str, Any],
    samples: Sequence[Mapping[str, Any]],
    *,
    comparison: Comparison | None = None,
    baseline_samples: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """The report as one HTML string (see the module docstring)."""
    secrets = run_secrets(manifest)
    manifest = scrub(manifest)
    cells = manifest.get("cells") or []
    data = _sample_json(scrub(list(samples)), _changed_keys(samples, comparison, baseline_samples))
    labels = [cell_label(c.get("experiment"), c.get("cell_id")) for c in cells]
    payload = json.dumps(
        {"samples": data, "cells": labels},
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    payload = payload.replace("</", "<\\/").replace("<!--", "<\\!--")
    title = f"themis run {manifest.get('run_id')}"
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>{_header(manifest, len(data))}"
        f'<h2>Cells</h2><div id="charts">{"".join(charts(cells))}</div>'
        f"{_comparison(comparison)}"
        f"{_BROWSER}"
        f'<script type="application/json" id="themis-data">{payload}</script>'
        f"<script>{_JS}</script></body></html>"
    )
    return redact_output(page, secrets)  # e.g. a response echoing the key


def write_html(
    path: str | os.PathLike[str],
    manifest: Mapping[str, Any],
    samples: Sequence[Mapping[str, Any]],
    *,
    comparison: Comparison | None = None,
    baseline_samples: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """Write :func:`render_html` to ``path`` (parents created); return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = render_html(manifest, samples, comparison=comparison, baseline_samples=baseline_samples)
    target.write_text(text, encoding="utf-8")
    return target


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px}dt{font-weight:bold}dd{margin:0}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 6px;
text-align:left;vertical-align:top}
tr.v-regressed td{background:#fdd}tr.v-improved td{background:#dfd}
#samples tbody tr{cursor:pointer}#samples tbody tr:hover{background:#eef}
#samples td.txt{max-width:28em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
tr.wrong td:first-child{border-left:4px solid #c33}tr.err td:first-child{border-left:4px solid #e90}
#controls>*{margin-right:8px}
#detail{border:1px solid #999;padding:8px;margin-top:8px;background:#fafafa}
#detail pre{white-space:pre-wrap;word-break:break-word;margin:2px 0 8px;background:#fff;padding:4px}
"""

_BROWSER = """
<h2>Samples</h2><div id="controls">
<select id="filter"><option value="all">all</option><option value="wrong">wrong</option>
<option value="errors">errors</option><option value="changed">changed vs baseline</option></select>
<select id="cell"><option value="">every cell</option></select>
<input id="search" type="search" placeholder="search text">
<button id="prev">‹ prev</button><span id="page"></span><button id="next">next ›</button>
<span id="count"></span></div>
<table id="samples"><thead><tr><th>cell</th><th>row</th><th>epoch</th><th>response</th>
<th>extracted</th><th>reference</th><th>scores</th><th>error</th></tr></thead><tbody></tbody></table>
<div id="detail" hidden></div>
"""

_JS = r"""
(function(){
"use strict";
var D=JSON.parse(document.getElementById("themis-data").textContent);
var S=D.samples,PAGE=50,page=0,shown=[];
var $=function(id){return document.getElementById(id);};
var cellSel=$("cell");
D.cells.forEach(function(c){var o=document.createElement("option");o.value=c;o.textContent=c;
cellSel.appendChild(o);});
function str(v){if(v===null||v===undefined)return"";return typeof v==="string"?v:JSON.stringify(v);}
function hay(s){if(s._h===undefined){s._h=[s[0],s[1],str(s[3]),str(s[4]),str(s[5]),str(s[6]),
str(s[8])].join("\n").toLowerCase();}return s._h;}
function scores(o){return Object.keys(o||{}).map(function(k){return k+"="+o[k];}).join(" ");}
function apply(){
var f=$("filter").value,c=cellSel.value,q=$("search").value.trim().toLowerCase();shown=[];
for(var i=0;i<S.length;i++){var s=S[i];
if(f==="wrong"&&!s[9])continue;if(f==="errors"&&!s[8])continue;if(f==="changed"&&!s[10])continue;
if(c&&s[0]!==c)continue;if(q&&hay(s).indexOf(q)<0)continue;shown.push(i);}
page=0;render();}
function td(tr,text,cls){var e=document.createElement("td");e.textContent=text;
if(cls)e.className=cls;tr.appendChild(e);}
function render(){
var body=document.querySelector("#samples tbody");body.textContent="";
var pages=Math.max(1,Math.ceil(shown.length/PAGE));if(page>=pages)page=pages-1;
shown.slice(page*PAGE,page*PAGE+PAGE).forEach(function(i){var s=S[i];
var tr=document.createElement("tr");tr.dataset.i=i;
if(s[9])tr.className="wrong";if(s[8])tr.className="err";
td(tr,s[0]);td(tr,s[1]);td(tr,String(s[2]));td(tr,str(s[4]),"txt");td(tr,str(s[5]),"txt");
td(tr,str(s[6]),"txt");td(tr,scores(s[7]));td(tr,str(s[8]));body.appendChild(tr);});
$("page").textContent=" page "+(page+1)+"/"+pages+" ";
$("count").textContent=shown.length+" of "+S.length+" samples";}
function detail(i){var s=S[i],d=$("detail");d.textContent="";d.hidden=false;
[["cell",s[0]],["row",s[1]+" (epoch "+s[2]+")"],["prompt",str(s[3])],["response",str(s[4])],
["extracted answer",str(s[5])],["reference",str(s[6])],["scores",scores(s[7])],
["error",str(s[8])]].forEach(function(p){var h=document.createElement("b");h.textContent=p[0];
var pre=document.createElement("pre");pre.className="f-"+p[0].split(" ")[0];pre.textContent=p[1];
d.appendChild(h);d.appendChild(pre);});}
document.querySelector("#samples tbody").addEventListener("click",function(e){
var tr=e.target.closest("tr");if(tr)detail(+tr.dataset.i);});
$("filter").addEventListener("change",apply);cellSel.addEventListener("change",apply);
$("search").addEventListener("input",apply);
$("prev").addEventListener("click",function(){if(page>0){page--;render();}});
$("next").addEventListener("click",function(){page++;render();});
apply();document.body.dataset.readyMs=String(performance.now());
document.body.dataset.ready="1";
})();
"""
