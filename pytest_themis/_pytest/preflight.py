"""Validate every collected themis evaluation before the first request (a usage error, exit 4).

Runs at the end of collection (not with ``--collect-only``): for each evaluation whose rows and
metrics come from the marker or a preset — not from an overriding ``themis_dataset`` /
``themis_pipeline`` / ``themis_metrics`` / ``themis_extractor`` fixture, which only exist when a
test runs — the rows are loaded and checked against the plan, and each ``--themis-fail-under``
gate is checked against the metric names and ranges (:mod:`pytest_themis.experiment.validation`).
The default store (cache folder or ``--themis-storage``) and the ``--themis-backend`` engine are
opened too, so an unusable one (unreachable address, missing extra) is one line, not a traceback,
and ``--themis-score-on-engine`` without a Ray/Dask engine is refused.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..errors import ThemisError
from . import CASE_FIXTURE

__all__ = ["preflight"]

_PLUGIN_MODULE = "pytest_themis.plugin"
_PRESET_PREFIX = "themis-preset::"


def _default_fixture(item: pytest.Item, name: str) -> bool:
    """Whether ``item`` uses the plugin's own ``name`` fixture (or does not request it)."""
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.get(name) if info is not None else None
    if not defs:
        return True
    return getattr(defs[-1].func, "__module__", None) == _PLUGIN_MODULE


def _spec_keys(items: list[pytest.Item]) -> dict[str, tuple[bool, bool]]:
    """Spec key -> (rows are the defaults, pipeline is the default) over all its items."""
    found: dict[str, tuple[bool, bool]] = {}
    for item in items:
        case = getattr(item, "case", None)  # a preset item
        callspec = getattr(item, "callspec", None)
        if case is None and callspec is not None:
            case = callspec.params.get(CASE_FIXTURE)
        if case is None:
            continue
        rows_default = _default_fixture(item, "themis_dataset")
        pipe_default = all(
            _default_fixture(item, n)
            for n in ("themis_pipeline", "themis_metrics", "themis_extractor")
        )
        old = found.get(case.spec_key, (True, True))
        found[case.spec_key] = (old[0] and rows_default, old[1] and pipe_default)
    return found


def _check_spec(session: Any, key: str, spec: Any, rows_default: bool, pipe_default: bool) -> None:
    from ..experiment import validation
    from .gates import preset_gates

    options = session.options
    if rows_default and spec.source.kind != "none":
        rows = session.load_rows(spec.source)
        validation.check_rows(spec.plan, rows)
    if not pipe_default:
        return
    if spec.pipeline is not None:
        metrics = list(getattr(spec.pipeline, "metrics", ()))
    else:
        metrics = session.default_metrics(spec)
    validation.check_references(spec.plan, metrics)
    gates = options.fail_under
    if key.startswith(_PRESET_PREFIX):
        gates = preset_gates(spec, gates)
    if gates and not spec.per_sample:  # per-sample items are not gated
        primary = spec.primary_metric or (str(metrics[0].name) if metrics else None)
        validation.check_gates(gates, metrics, primary)


def _check_storage(session: Any) -> None:
    """Open the default cache folder now: an unusable folder is one usage error, not a
    traceback per item."""
    from ..storage import ExperimentStorage

    storage = session.default_storage()
    if isinstance(storage, ExperimentStorage):
        storage.cache  # noqa: B018 - opens (and creates) the folder, or raises CacheFolderError


def preflight(session: Any, items: list[pytest.Item]) -> None:
    """Raise :class:`pytest.UsageError` for the first configuration mistake found."""
    specs = _spec_keys(items)
    for key, (rows_default, pipe_default) in specs.items():
        spec = session.specs.get(key)
        if spec is None:
            continue
        try:
            _check_spec(session, key, spec, rows_default, pipe_default)
        except ThemisError as exc:
            raise pytest.UsageError(f"{key}: {exc}") from None
        except pytest.fail.Exception as exc:  # the session's loaders report this way
            raise pytest.UsageError(f"{key}: {exc.msg}") from None
    if specs and any(_default_fixture(i, "themis_storage") for i in items):
        try:
            _check_storage(session)
        except ThemisError as exc:
            raise pytest.UsageError(str(exc)) from None
        except pytest.fail.Exception as exc:  # an unusable --themis-storage store, in one line
            raise pytest.UsageError(exc.msg) from None
    if specs and any(_default_fixture(i, "themis_execution_backend") for i in items):
        try:
            backend = session.default_backend()
        except pytest.fail.Exception as exc:  # unreachable engine or missing extra, one line
            raise pytest.UsageError(exc.msg) from None
        if session.options.score_on_engine:
            from ..backends.scoring import check_scoring_backend

            try:
                check_scoring_backend(backend, "--themis-score-on-engine")
            except ThemisError as exc:
                raise pytest.UsageError(str(exc)) from None
