"""The ``themis`` subcommands; each takes the parsed arguments and the open store."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from ..comparison.compare import RunData
from ..comparison.loading import load_run
from ..errors import ConfigurationError
from ..report.runs import cell_results, list_runs, run_date

__all__ = ["compare", "export", "report", "runs", "show"]


def _load(spec: str, store: Any) -> RunData:
    """A run named on the command line (a file is read without opening the store)."""
    return load_run(spec, store, hint="`themis runs` lists the runs this store keeps")


def _out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def runs(args: Any, store: Any) -> int:
    try:
        found = list_runs(store)
    except NotImplementedError as exc:
        raise ConfigurationError(f"--store {args.store}: {exc}") from None
    if not found:
        _out(f"no runs kept in {args.store}")
        return 0
    rows = [("run", "date (UTC)", "cells", "headline")]
    rows += [(r["run_id"], r["date"], str(r["cells"]), r["headline"]) for r in found]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        _out("  ".join(row[i].ljust(widths[i]) for i in range(4)).rstrip())
    return 0


def show(args: Any, store: Any) -> int:
    from .._pytest.summary import format_table

    run = _load(args.run, store)
    _out(f"run {run.run_id}  {run_date(run.manifest)}  {len(run.samples)} samples")
    for line in format_table(cell_results(run.manifest)):
        _out(line)
    return 0


def compare(args: Any, store: Any) -> int:
    from ..comparison import compare_runs
    from ..report.formatting import format_comparison

    base, new = _load(args.base, store), _load(args.new, store)
    comparison = compare_runs(new, base, margin=args.margin)
    for line in format_comparison(comparison):
        _out(line)
    return 1 if comparison.regressions() else 0


def report(args: Any, store: Any) -> int:
    from ..report.html import write_html

    run = _load(args.run, store)
    comparison = baseline = None
    if args.baseline:
        from ..comparison import compare_runs

        baseline = _load(args.baseline, store)
        comparison = compare_runs(run, baseline)
    path = write_html(
        args.output,
        run.manifest,
        run.samples,
        comparison=comparison,
        baseline_samples=baseline.samples if baseline is not None else None,
    )
    _out(f"themis report: {path}")
    return 0


_CSV_FIELDS = (
    "run_id", "experiment", "cell_id", "row_id", "epoch", "response", "extracted",
    "reference", "error", "cached", "latency",
)  # fmt: skip


def export(args: Any, store: Any) -> int:
    run = _load(args.run, store)
    buffer = io.StringIO()
    if args.format == "jsonl":
        for row in run.samples:
            buffer.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
    else:
        metrics = list(dict.fromkeys(n for row in run.samples for n in row.get("scores") or {}))
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([*_CSV_FIELDS, *metrics])
        for row in run.samples:
            scores = row.get("scores") or {}
            writer.writerow(
                [_cell(row.get(f)) for f in _CSV_FIELDS] + [_cell(scores.get(m)) for m in metrics]
            )
    if args.output:
        Path(args.output).write_text(buffer.getvalue(), encoding="utf-8")
    else:
        sys.stdout.write(buffer.getvalue())
    return 0


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
