"""Command-line flags and ini keys of the plugin, with strict parsers.

This module is imported by every pytest run that has the plugin installed, so it uses only the
standard library and pytest. Values are parsed when pytest reads the command line; ini values are
parsed by :func:`resolve_options`. Every bad value raises :class:`pytest.UsageError` naming the flag
or ini key and the accepted format.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "CACHE_MODES",
    "DEFAULT_CACHE_DIR",
    "GATE_MODES",
    "FailUnder",
    "ThemisOptions",
    "add_options",
    "resolve_options",
    "parse_fail_under",
]

CACHE_MODES = ("use", "refresh", "off", "replay")
GATE_MODES = ("point", "lower")
DEFAULT_CACHE_DIR = ".themis_cache"  # the same folder evaluate() uses

Parser = Callable[[str], Any]


@dataclass(frozen=True)
class FailUnder:
    """A ``--themis-fail-under`` gate: ``metric`` (None = primary metric) must be >= ``value``."""

    metric: str | None
    value: float

    def describe(self) -> str:
        return f"{self.metric or '<primary metric>'} >= {self.value:g}"


def _usage(where: str, expected: str, raw: object) -> pytest.UsageError:
    return pytest.UsageError(f"{where} expects {expected}, got {raw!r}")


def _int_parser(where: str, minimum: int) -> Parser:
    def parse(raw: str) -> int:
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise _usage(where, f"an integer >= {minimum}", raw) from None
        if value < minimum:
            raise _usage(where, f"an integer >= {minimum}", raw)
        return value

    return parse


def _float_parser(where: str, *, positive: bool) -> Parser:
    expected = "a number > 0 (e.g. 30 or 2.5)" if positive else "a number (e.g. 0.8)"

    def parse(raw: str) -> float:
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise _usage(where, expected, raw) from None
        if not math.isfinite(value) or (positive and value <= 0):
            raise _usage(where, expected, raw)
        return value

    return parse


def _choice_parser(where: str, choices: Sequence[str]) -> Parser:
    def parse(raw: str) -> str:
        value = str(raw).strip().lower()
        if value not in choices:
            raise _usage(where, f"one of {', '.join(choices)}", raw)
        return value

    return parse


def _parallel_parser(where: str) -> Parser:
    ints = _int_parser(where, 1)

    def parse(raw: str) -> int | str:
        if str(raw).strip().lower() == "auto":
            return "auto"
        try:
            return ints(raw)
        except pytest.UsageError:
            raise _usage(where, "an integer >= 1 or 'auto'", raw) from None

    return parse


def _url_parser(where: str) -> Parser:
    def parse(raw: str) -> str:
        value = str(raw).strip()
        if not value.startswith(("http://", "https://")) or len(value) <= len("http://"):
            raise _usage(where, "an http(s) URL such as http://127.0.0.1:8000/v1", raw)
        return value

    return parse


def _text_parser(where: str) -> Parser:
    def parse(raw: str) -> str:
        value = str(raw).strip()
        if not value:
            raise _usage(where, "a non-empty value", raw)
        return value

    return parse


def _run_id_parser(where: str) -> Parser:
    def parse(raw: str) -> str:
        value = str(raw).strip()
        if not value or any(ch in value for ch in "/\\\n\r\t") or value in (".", ".."):
            raise _usage(where, "a non-empty id without slashes or whitespace", raw)
        return value

    return parse


def parse_fail_under(raw: str, where: str = "--themis-fail-under") -> FailUnder:
    """Parse ``VALUE`` or ``METRIC=VALUE`` (``METRIC`` any spelling: ExactMatch, exact_match)."""
    expected = "[METRIC=]VALUE, e.g. 0.8 or ExactMatch=0.8"
    text = str(raw).strip()
    metric, sep, number = text.rpartition("=")
    metric = metric.strip()
    if sep and not metric:
        raise _usage(where, expected, raw)
    if metric and not all(ch.isalnum() or ch in "_-." for ch in metric):
        raise _usage(where, expected, raw)
    try:
        value = float(number.strip())
    except ValueError:
        raise _usage(where, expected, raw) from None
    if not math.isfinite(value):
        raise _usage(where, expected, raw)
    return FailUnder(metric or None, value)


@dataclass(frozen=True)
class _Spec:
    dest: str  # attribute on config.option and key of ThemisOptions values
    flag: str | None
    ini: str | None
    make_parser: Callable[[str], Parser] | None
    help: str
    metavar: str | None = None
    append: bool = False
    ini_type: str = "string"


_SPECS: tuple[_Spec, ...] = (
    _Spec("preset", "--themis-preset", "themis_presets", _text_parser,
          "run a built-in benchmark as synthesized test items (repeatable): demo, gsm8k, math500",
          "NAME", append=True, ini_type="args"),
    _Spec("model", "--themis-model", "themis_models", _text_parser,
          "model to evaluate, replacing the models of every themis test (repeatable): "
          "provider/model for litellm, fake:NAME, python:pkg.mod:fn", "ID", append=True,
          ini_type="args"),
    _Spec("api_base", "--themis-api-base", "themis_api_base", _url_parser,
          "base URL of an OpenAI-compatible endpoint for litellm models", "URL"),
    _Spec("limit", "--themis-limit", "themis_limit", lambda w: _int_parser(w, 1),
          "evaluate only the first N dataset rows", "N"),
    _Spec("epochs", "--themis-epochs", "themis_epochs", lambda w: _int_parser(w, 1),
          "samples generated per row and cell", "N"),
    _Spec("max_parallel", "--themis-max-parallel", "themis_max_parallel", _parallel_parser,
          "requests in flight at once (integer or 'auto')", "N"),
    _Spec("max_retries", "--themis-max-retries", "themis_max_retries",
          lambda w: _int_parser(w, 0), "retries of a transient provider error", "N"),
    _Spec("timeout", "--themis-timeout", "themis_timeout",
          lambda w: _float_parser(w, positive=True), "per-request timeout in seconds", "S"),
    _Spec("cache", "--themis-cache", "themis_cache", lambda w: _choice_parser(w, CACHE_MODES),
          "generation cache: use (default), refresh, off, replay (read only; a miss fails)",
          "{use,refresh,off,replay}"),
    _Spec("cache_dir", "--themis-cache-dir", "themis_cache_dir", _text_parser,
          f"generation cache folder (default: <rootdir>/{DEFAULT_CACHE_DIR})", "DIR"),
    _Spec("data_dir", "--themis-data-dir", "themis_data_dir", _text_parser,
          "folder with local benchmark copies (<preset>.jsonl)", "DIR"),
    _Spec("fail_under", "--themis-fail-under", "themis_fail_under",
          lambda w: lambda raw: parse_fail_under(raw, w),
          "fail a cell whose metric is below VALUE; bare VALUE gates the primary metric "
          "(repeatable)", "[METRIC=]VALUE", append=True, ini_type="args"),
    _Spec("gate", "--themis-gate", "themis_gate", lambda w: _choice_parser(w, GATE_MODES),
          "compare gates against the mean (point) or the lower 95%% CI bound (lower)",
          "{point,lower}"),
    _Spec("max_errors", "--themis-max-errors", "themis_max_errors",
          lambda w: _int_parser(w, 0),
          "generation errors tolerated per cell before its items fail (default 0)", "N"),
    _Spec("manifest", "--themis-manifest", "themis_manifest", _text_parser,
          "where to write the run manifest JSON (default: <cache dir>/manifest.json)", "PATH"),
    _Spec("run_id", "--themis-run-id", None, _run_id_parser,
          "id of this run in the manifest (default: generated)", "ID"),
    _Spec("max_cost_usd", "--themis-max-cost-usd", "themis_max_cost_usd",
          lambda w: _float_parser(w, positive=True),
          "stop sending requests once this many dollars were spent", "X"),
)  # fmt: skip

_DEFAULTS: dict[str, Any] = {"gate": "point", "max_errors": 0, "cache": "use"}


def _cli_parser(spec: _Spec) -> Parser:
    assert spec.make_parser is not None and spec.flag is not None
    return spec.make_parser(spec.flag)


def add_options(parser: pytest.Parser) -> None:
    """Register the ``themis`` option group and its ini keys."""
    group = parser.getgroup("themis", "LLM evaluations (pytest-themis)")
    for spec in _SPECS:
        if spec.flag is not None:
            group.addoption(
                spec.flag,
                dest=f"themis_{spec.dest}",
                action="append" if spec.append else "store",
                default=[] if spec.append else None,
                type=_cli_parser(spec),
                metavar=spec.metavar,
                help=spec.help,
            )
        if spec.ini is not None:
            ini_type: Any = spec.ini_type
            parser.addini(spec.ini, help=spec.help.replace("%%", "%"), type=ini_type, default=None)


def themis_flags_given(config: pytest.Config) -> bool:
    """True when any ``--themis-*`` flag was given on the command line."""
    for spec in _SPECS:
        value = getattr(config.option, f"themis_{spec.dest}", None)
        if value not in (None, []):
            return True
    return False


@dataclass
class ThemisOptions:
    """Parsed flags (``cli``) and ini keys (``ini``); see :meth:`get` for precedence."""

    cli: dict[str, Any] = field(default_factory=dict)
    ini: dict[str, Any] = field(default_factory=dict)
    rootdir: Path = field(default_factory=Path.cwd)
    invocation_dir: Path = field(default_factory=Path.cwd)
    ini_dir: Path | None = None

    def get(self, name: str, marker: Any = None, preset: Any = None) -> Any:
        """Effective value: command line > marker > ini > preset default > built-in default."""
        for value in (self.cli.get(name), marker, self.ini.get(name), preset):
            if value is not None and value != [] and value != ():
                return value
        return _DEFAULTS.get(name)

    @property
    def presets(self) -> list[str]:
        return list(self.cli.get("preset") or self.ini.get("preset") or [])

    @property
    def cli_models(self) -> list[str]:
        return list(self.cli.get("model") or [])

    @property
    def ini_models(self) -> list[str]:
        return list(self.ini.get("model") or [])

    @property
    def fail_under(self) -> list[FailUnder]:
        return list(self.cli.get("fail_under") or self.ini.get("fail_under") or [])

    @property
    def gate(self) -> str:
        return str(self.get("gate"))

    @property
    def max_errors(self) -> int:
        return int(self.get("max_errors"))

    @property
    def cache_mode(self) -> str:
        return str(self.get("cache"))

    def _path(self, name: str) -> Path | None:
        if self.cli.get(name):
            return (self.invocation_dir / os.path.expanduser(self.cli[name])).resolve()
        if self.ini.get(name):
            base = self.ini_dir or self.rootdir
            return (base / os.path.expanduser(self.ini[name])).resolve()
        return None

    @property
    def cache_dir(self) -> Path:
        return self._path("cache_dir") or (self.rootdir / DEFAULT_CACHE_DIR)

    @property
    def data_dir(self) -> Path | None:
        return self._path("data_dir")

    @property
    def manifest_path(self) -> Path:
        return self._path("manifest") or (self.cache_dir / "manifest.json")

    @property
    def any_set(self) -> bool:
        return any(v not in (None, [], ()) for v in self.cli.values())


def resolve_options(config: pytest.Config) -> ThemisOptions:
    """Collect flags (already parsed by argparse) and parse the ini keys strictly."""
    cli: dict[str, Any] = {}
    ini: dict[str, Any] = {}
    for spec in _SPECS:
        value = getattr(config.option, f"themis_{spec.dest}", None)
        if value not in (None, []):
            cli[spec.dest] = value
        if spec.ini is None or spec.make_parser is None:
            continue
        raw = config.getini(spec.ini)
        if raw in (None, "", []):
            continue
        parse = spec.make_parser(f"ini option {spec.ini}")
        if spec.append:
            items = raw if isinstance(raw, list) else str(raw).split()
            ini[spec.dest] = [parse(item) for item in items]
        else:
            ini[spec.dest] = parse(raw)
    inipath = getattr(config, "inipath", None)
    return ThemisOptions(
        cli=cli,
        ini=ini,
        rootdir=Path(config.rootpath),
        invocation_dir=Path(config.invocation_params.dir),
        ini_dir=Path(inipath).parent if inipath else None,
    )
