"""The ``themis`` command: list, show, compare, report and export runs kept by pytest-themis.

``themis runs``, ``themis show RUN``, ``themis compare BASE NEW``, ``themis report RUN -o FILE``
and ``themis export RUN --format jsonl|csv``. ``RUN`` is a manifest (or ``runs/<id>.json``) path,
a run id kept in the store (``--store``: a folder or a ``postgresql://``/``s3://`` URL) or
``latest``. Exit status: 0 ok, 1 a regression (``compare``), 2 bad arguments or an unknown run.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from ..errors import ThemisError

__all__ = ["main"]

_DEFAULT_STORE = ".themis_cache"


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="themis", description="Look at runs recorded by pytest-themis.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name: str, text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument(
            "--store",
            default=_DEFAULT_STORE,
            help="where runs are kept: a cache folder or a postgresql:// / s3:// URL "
            f"(default {_DEFAULT_STORE})",
        )
        return p

    add("runs", "List the runs kept in the store (id, date, cells, headline metric).")
    p = add("show", "Print a run's table of cells and metrics.")
    p.add_argument("run", help="manifest.json / runs/<id>.json path, run id or 'latest'")
    p = add("compare", "Compare NEW with BASE sample by sample; exit 1 on a regression.")
    p.add_argument("base", help="the baseline run (path, run id or 'latest')")
    p.add_argument("new", help="the new run (path, run id or 'latest')")
    p.add_argument(
        "--margin", type=float, default=0.0, help="drop that counts as a regression (0-1)"
    )
    p = add("report", "Write a self-contained HTML report of a run.")
    p.add_argument("run", help="manifest.json / runs/<id>.json path, run id or 'latest'")
    p.add_argument("-o", "--output", required=True, help="the HTML file to write")
    p.add_argument("--baseline", help="also show the comparison with this run")
    p = add("export", "Write a run's per-sample results as JSON Lines or CSV.")
    p.add_argument("run", help="manifest.json / runs/<id>.json path, run id or 'latest'")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.add_argument("-o", "--output", help="file to write (default: standard output)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``themis`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    from . import commands

    store = _LazyStore(args.store)
    try:
        try:
            status: int = getattr(commands, args.command)(args, store)
        finally:
            store.close()
    except ThemisError as exc:
        print(f"themis {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # pragma: no cover - e.g. `themis export RUN | head`
        return 0
    return status


class _LazyStore:
    """The ``--store`` store, opened on first use: a run given as a file needs no store, and
    a folder that does not exist is an error, not a new empty cache."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self._store: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._store is None:
            from ..errors import ConfigurationError
            from ..storage import open_storage
            from ..storage.urls import storage_scheme

            if storage_scheme(self.spec) is None and not os.path.isdir(self.spec):
                raise ConfigurationError(
                    f"--store {self.spec}: no such folder; name the cache folder or store URL "
                    "the runs were kept in"
                )
            self._store = open_storage(self.spec)
        return getattr(self._store, name)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
