"""The table of ``--themis-*`` flags and ini keys, and their registration with pytest.

Every pytest run with the plugin installed imports this module, so it is a data table and three
short functions. Values are checked by the strict parsers of :mod:`.options`, which is imported only
when a flag is given on the command line or a run reads its options.
"""

from __future__ import annotations

from typing import Any

import pytest

__all__ = ["FLAGS", "add_options", "flag_name", "options_given"]


#: One row per option: (dest, ini key or None, parser kind, repeatable, metavar, help). The flag
#: is ``--themis-<dest>`` (underscores as dashes) and its value lands in
#: ``config.option.themis_<dest>``; ``kind`` names a parser in :data:`.options.PARSERS`. A
#: repeatable flag is a whitespace-separated list in the ini file; a ``switch`` takes no value on
#: the command line (true/false in the ini file). Plain tuples, because a class per row costs more
#: to create than the whole table.
FLAGS: tuple[tuple[str, str | None, str, bool, str, str], ...] = (
    ("preset", "themis_presets", "text", True, "NAME",
     "run a built-in benchmark as synthesized test items (repeatable): demo, gsm8k, math500"),
    ("model", "themis_models", "text", True, "ID",
     "model to evaluate, replacing the models of every themis test (repeatable): "
     "provider/model for litellm, fake:NAME, python:pkg.mod:fn"),
    ("api_base", "themis_api_base", "url", False, "URL",
     "base URL of an OpenAI-compatible endpoint for litellm models"),
    ("client", "themis_client", "client", False, "{auto,litellm,native}",
     "HTTP client of litellm models: auto (native for openai/<model> with an api base), "
     "litellm, native"),
    ("limit", "themis_limit", "count", False, "N", "evaluate only the first N dataset rows"),
    ("epochs", "themis_epochs", "count", False, "N", "samples generated per row and cell"),
    ("max_parallel", "themis_max_parallel", "parallel", False, "N",
     "requests in flight at once (integer or 'auto')"),
    ("max_retries", "themis_max_retries", "natural", False, "N",
     "retries of a transient provider error"),
    ("timeout", "themis_timeout", "positive", False, "S", "per-request timeout in seconds"),
    ("cache", "themis_cache", "cache", False, "{use,refresh,off,replay}",
     "generation cache: use (default), refresh, off, replay (read only; a miss fails)"),
    ("cache_dir", "themis_cache_dir", "text", False, "DIR",
     "generation cache folder (default: <rootdir>/.themis_cache)"),
    ("storage", "themis_storage", "storage", False, "URL",
     "generation store: postgresql://user:pw@host:port/db, s3://bucket/prefix or a folder "
     "(default: the --themis-cache-dir folder; not both)"),
    ("backend", "themis_backend", "backend", False, "NAME",
     "execution engine of the generations: local (default), ray, ray://host:port, "
     "ray:host:port, dask://host:port or a registered backend name"),
    ("score_on_engine", "themis_score_on_engine", "switch", False, "",
     "score on the --themis-backend engine's workers too (Ray/Dask; judges stay local)"),
    ("data_dir", "themis_data_dir", "text", False, "DIR",
     "folder with local benchmark copies (<preset>.jsonl)"),
    ("fail_under", "themis_fail_under", "fail_under", True, "[METRIC=]VALUE",
     "fail a cell whose metric is below VALUE; bare VALUE gates the primary metric "
     "(repeatable)"),
    ("gate", "themis_gate", "gate", False, "{point,lower}",
     "compare gates against the mean (point) or the lower 95% CI bound (lower)"),
    ("max_errors", "themis_max_errors", "natural", False, "N",
     "generation errors tolerated per cell before its items fail (default 0)"),
    ("manifest", "themis_manifest", "text", False, "PATH",
     "where to write the run manifest JSON (default: <cache dir>/manifest.json)"),
    ("run_id", None, "run_id", False, "ID",
     "id of this run in the manifest (default: generated)"),
    ("max_cost_usd", "themis_max_cost_usd", "positive", False, "X",
     "stop sending requests once this many dollars were spent"),
    ("baseline", "themis_baseline", "baseline", False, "PATH|RUN_ID|latest",
     "compare every cell with this earlier run (a manifest or runs/<run_id>.json file, a run "
     "id kept in the cache, or latest)"),
    ("fail_on_regression", None, "optional_margin", False, "MARGIN",
     "fail a cell whose drop vs the baseline beyond MARGIN (default 0) is significant after "
     "Holm; write --themis-fail-on-regression=0.02, or put the bare flag after the paths"),
    ("require_noninferior", None, "margin", False, "MARGIN",
     "fail a cell unless the lower 95% bound of its difference vs the baseline is above "
     "-MARGIN (an inconclusive comparison fails)"),
    ("samples", None, "text", False, "PATH",
     "where to write the per-sample results as JSON Lines (default: "
     "<manifest dir>/runs/<run_id>.samples.jsonl)"),
    ("html", "themis_html", "text", False, "PATH",
     "write a self-contained HTML report of the run (charts, comparison, every sample)"),
    ("md", None, "text", False, "PATH",
     "write a Markdown summary (also appended to $GITHUB_STEP_SUMMARY when that is set)"),
    ("plot", None, "text", False, "PATH",
     "write an SVG chart of every cell's metrics with 95% CIs"),
    ("log_prompts", "themis_log_prompts", "log_prompts", False, "{full,hash}",
     "record each prompt in the per-sample results in full (default) or as its SHA-256"),
)  # fmt: skip


class _Value:
    """argparse ``type=`` of one flag: the strict parser of its kind, imported on first use."""

    __slots__ = ("kind", "where")

    def __init__(self, kind: str, where: str) -> None:
        self.kind = kind
        self.where = where

    def __call__(self, raw: str) -> Any:
        from .options import parse_value  # deferred: options imports FLAGS; plain runs skip it

        return parse_value(self.kind, self.where, raw)


def flag_name(dest: str) -> str:
    """The command-line flag of the option stored under ``dest``."""
    return "--themis-" + dest.replace("_", "-")


def add_options(parser: pytest.Parser) -> None:
    """Register the ``themis`` option group and its ini keys."""
    group = parser.getgroup("themis", "LLM evaluations (pytest-themis)")
    for dest, ini, kind, many, metavar, text in FLAGS:
        flag = flag_name(dest)
        if kind == "switch":
            group.addoption(flag, dest="themis_" + dest, action="store_const", const=True,
                            default=None, help=text.replace("%", "%%"))  # fmt: skip
            if ini is not None:
                parser.addini(ini, help=text, type="string", default=None)
            continue
        # an optional value (``--flag`` or ``--flag=X``): the bare flag stores 0.0
        optional: dict[str, Any] = (
            {"nargs": "?", "const": 0.0} if kind.startswith("optional_") else {}
        )
        group.addoption(
            flag,
            dest="themis_" + dest,
            action="append" if many else "store",
            default=[] if many else None,
            type=_Value(kind, flag),
            metavar=metavar,
            help=text.replace("%", "%%"),  # argparse %-formats flag help, not ini help
            **optional,
        )
        if ini is not None:
            ini_type: Any = "args" if many else "string"
            parser.addini(ini, help=text, type=ini_type, default=None)


def options_given(config: pytest.Config) -> bool:
    """True when a ``--themis-*`` flag is on the command line or a themis ini key is set."""
    option = config.option
    for dest, ini, *_ in FLAGS:
        if getattr(option, "themis_" + dest, None) not in (None, []):
            return True
        if ini is not None and config.getini(ini) not in (None, "", []):
            return True
    return False
