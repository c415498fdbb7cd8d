"""Strict parsers of the plugin's flags and ini keys, and the resolved :class:`ThemisOptions`.

The flags are declared in :mod:`.flags`, which every pytest run imports; this module is imported
only when a run uses themis or gives a ``--themis-*`` flag. Command-line values are parsed when
pytest reads the command line; ini values are parsed by :func:`resolve_options`. Every bad value
raises :class:`pytest.UsageError` naming the flag or ini key and the accepted format.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..core.defaults import CACHE_MODES, DEFAULT_CACHE_DIR
from .flags import FLAGS

__all__ = [
    "CACHE_MODES",
    "DEFAULT_CACHE_DIR",
    "GATE_MODES",
    "PARSERS",
    "FailUnder",
    "ThemisOptions",
    "parse_fail_under",
    "parse_value",
    "resolve_options",
]

GATE_MODES = ("point", "lower")
LOG_PROMPT_MODES = ("full", "hash")

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


def _client_parser(where: str) -> Parser:
    from ..providers.clients import CLIENTS  # only when the option is given

    return _choice_parser(where, CLIENTS)


def _switch_parser(where: str) -> Parser:
    def parse(raw: str) -> bool:
        value = str(raw).strip().lower()
        if value in ("true", "yes", "on", "1"):
            return True
        if value in ("false", "no", "off", "0"):
            return False
        raise _usage(where, "true or false", raw)

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


def _storage_parser(where: str) -> Parser:
    def parse(raw: str) -> str:
        from ..errors import ConfigurationError
        from ..storage.urls import check_storage_spec

        try:
            return check_storage_spec(raw)
        except ConfigurationError as exc:
            raise pytest.UsageError(f"{where}: {exc}") from None

    return parse


def _backend_parser(where: str) -> Parser:
    """Check the form only: a registered name is looked up when the engine is built (plugins
    registered by a conftest are not known yet when the command line is parsed)."""

    def parse(raw: str) -> str:
        name = str(raw).strip()
        if name.startswith(("ray://", "dask://")):
            ok = bool(name.partition("://")[2])
        elif name.startswith("ray:"):
            ok = bool(name[len("ray:") :])
        else:
            ok = bool(name) and all(ch.isalnum() or ch in "_-." for ch in name)
        if not ok:
            raise _usage(
                where,
                "local, ray, ray://host:port, ray:host:port, dask://host:port or a registered "
                "backend name",
                raw,
            )
        return name

    return parse


def parse_fail_under(raw: str, where: str = "--themis-fail-under") -> FailUnder:
    """Parse ``VALUE`` or ``METRIC=VALUE`` (``METRIC`` any spelling: ExactMatch, exact_match)."""
    expected = "[METRIC=]VALUE, e.g. 0.8, ExactMatch=0.8 or pass@5=0.9"
    text = str(raw).strip()
    metric, sep, number = text.rpartition("=")
    metric = metric.strip()
    if sep and not metric:
        raise _usage(where, expected, raw)
    if metric and not all(ch.isalnum() or ch in "_-.@" for ch in metric):
        raise _usage(where, expected, raw)
    try:
        value = float(number.strip())
    except ValueError:
        raise _usage(where, expected, raw) from None
    if not math.isfinite(value):
        raise _usage(where, expected, raw)
    return FailUnder(metric or None, value)


def _margin_parser(where: str) -> Parser:
    def parse(raw: str) -> float:
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise _usage(where, "a margin in [0, 1] (e.g. 0.02)", raw) from None
        if not 0.0 <= value <= 1.0:
            raise _usage(where, "a margin in [0, 1] (e.g. 0.02)", raw)
        return value

    return parse


#: Parser factories by the ``kind`` column of :data:`.flags.FLAGS`; each takes the name shown in
#: error messages (the flag or ``ini option <key>``).
PARSERS: dict[str, Callable[[str], Parser]] = {
    "text": _text_parser,
    "url": _url_parser,
    "count": lambda where: _int_parser(where, 1),
    "natural": lambda where: _int_parser(where, 0),
    "parallel": _parallel_parser,
    "positive": lambda where: _float_parser(where, positive=True),
    "cache": lambda where: _choice_parser(where, CACHE_MODES),
    "gate": lambda where: _choice_parser(where, GATE_MODES),
    "fail_under": lambda where: lambda raw: parse_fail_under(raw, where),
    "run_id": _run_id_parser,
    "storage": _storage_parser,
    "backend": _backend_parser,
    "baseline": _text_parser,
    "margin": _margin_parser,
    "optional_margin": _margin_parser,  # the flag's value may be left out (see flags.py)
    "log_prompts": lambda where: _choice_parser(where, LOG_PROMPT_MODES),
    "client": _client_parser,
    "switch": _switch_parser,
}

_DEFAULTS: dict[str, Any] = {
    "gate": "point",
    "max_errors": 0,
    "cache": "use",
    "log_prompts": "full",
}


def parse_value(kind: str, where: str, raw: str) -> Any:
    """Parse one value of an option of parser ``kind``; ``where`` names it in errors."""
    return PARSERS[kind](where)(raw)


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
    def storage(self) -> str | Path | None:
        """The ``--themis-storage`` store: a URL as given, a folder resolved; None if unset.

        A command-line ``--themis-cache-dir`` overrides an ini ``themis_storage``.
        """
        value = self.cli.get("storage")
        if value is None and not self.cli.get("cache_dir"):
            value = self.ini.get("storage")
        if value is None:
            return None
        from ..storage.urls import storage_scheme

        return value if storage_scheme(value) is not None else self._path("storage")

    @property
    def backend(self) -> str | None:
        """The ``--themis-backend`` engine name (``local`` and unset: None, the default engine)."""
        value = self.get("backend")
        return None if value in (None, "local", "default") else str(value)

    @property
    def score_on_engine(self) -> bool:
        """``--themis-score-on-engine`` (or ini ``themis_score_on_engine = true``)."""
        return bool(self.get("score_on_engine"))

    @property
    def data_dir(self) -> Path | None:
        return self._path("data_dir")

    @property
    def manifest_path(self) -> Path:
        return self._path("manifest") or (self.cache_dir / "manifest.json")

    @property
    def samples_path(self) -> Path | None:
        return self._path("samples")

    @property
    def html_path(self) -> Path | None:
        return self._path("html")

    @property
    def md_path(self) -> Path | None:
        return self._path("md")

    @property
    def plot_path(self) -> Path | None:
        return self._path("plot")

    @property
    def baseline(self) -> str | None:
        """``--themis-baseline``: a path (resolved like the other paths), a run id or latest."""
        raw = self.get("baseline")
        if raw is None or raw == "latest":
            return raw
        path = self._path("baseline")
        return str(path) if path is not None and path.is_file() else str(raw)


def resolve_options(config: pytest.Config) -> ThemisOptions:
    """Collect flags (already parsed by argparse) and parse the ini keys strictly."""
    cli: dict[str, Any] = {}
    ini: dict[str, Any] = {}
    for dest, ini_key, kind, many, *_ in FLAGS:
        value = getattr(config.option, f"themis_{dest}", None)
        if value not in (None, []):
            cli[dest] = value
        if ini_key is None:
            continue
        raw = config.getini(ini_key)
        if raw in (None, "", []):
            continue
        parse = PARSERS[kind](f"ini option {ini_key}")
        if many:
            items = raw if isinstance(raw, list) else str(raw).split()
            ini[dest] = [parse(item) for item in items]
        else:
            ini[dest] = parse(raw)
    for source, where in ((cli, "command line"), (ini, "ini file")):
        if "storage" in source and "cache_dir" in source:
            raise pytest.UsageError(
                f"--themis-storage and --themis-cache-dir are both set on the {where}; "
                "give one (the cache dir is the folder store, --themis-storage names any store)"
            )
    inipath = getattr(config, "inipath", None)
    return ThemisOptions(
        cli=cli,
        ini=ini,
        rootdir=Path(config.rootpath),
        invocation_dir=Path(config.invocation_params.dir),
        ini_dir=Path(inipath).parent if inipath else None,
    )
