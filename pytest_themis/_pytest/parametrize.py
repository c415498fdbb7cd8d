"""``pytest_generate_tests`` for themis tests: one item per cell (or per cell × row)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..errors import ThemisError
from . import CASE_FIXTURE, RESULT_FIXTURES
from .items import ThemisCase
from .session import ThemisSession
from .spec import build_marker_spec, validate_marker_kwargs

__all__ = ["parametrize"]


def _definition_key(metafunc: pytest.Metafunc) -> str:
    return metafunc.definition.nodeid


def parametrize(metafunc: pytest.Metafunc, session: ThemisSession) -> None:
    """Parametrize ``metafunc`` over its plan; raise :class:`pytest.UsageError` on bad input."""
    where = _definition_key(metafunc)
    marker = metafunc.definition.get_closest_marker("themis")
    if marker is None:
        wanted = sorted(RESULT_FIXTURES.intersection(metafunc.fixturenames))
        raise pytest.UsageError(
            f"{where}: requests {', '.join(wanted)} but is not marked; add "
            "@pytest.mark.themis(dataset=..., prompts=..., models=...) to say what to evaluate"
        )
    args: tuple[Any, ...] = marker.args
    kwargs: dict[str, Any] = dict(marker.kwargs)
    validate_marker_kwargs(args, kwargs, where)
    if CASE_FIXTURE not in metafunc.fixturenames:
        raise pytest.UsageError(
            f"{where}: a test marked @pytest.mark.themis must request themis_report, "
            "themis_cell or themis_sample"
        )
    test_dir = Path(metafunc.definition.path).parent
    spec = build_marker_spec(
        kwargs,
        session.options,
        name=metafunc.definition.nodeid.split("[", 1)[0],
        where=where,
        test_dir=test_dir,
    )
    spec = session.register(where, spec)
    cases: list[ThemisCase] = []
    ids: list[str] = []
    if spec.per_sample:
        rows = session_rows(session, spec, where)
        try:
            prepared = spec.plan.prepare(rows)
        except ThemisError as exc:
            raise pytest.UsageError(f"{where}: {exc}") from None
        for cell in spec.cells:
            for row in prepared:
                for index in range(spec.epochs):
                    cases.append(ThemisCase(where, cell, row.row_id, index))
                    suffix = f"#{index}" if spec.epochs > 1 else ""
                    ids.append(f"{cell.cell_id}-{row.row_id}{suffix}")
    else:
        for cell in spec.cells:
            cases.append(ThemisCase(where, cell))
            ids.append(cell.cell_id)
    metafunc.parametrize(CASE_FIXTURE, cases, ids=ids, indirect=True)


def session_rows(session: ThemisSession, spec: Any, where: str) -> list[dict[str, Any]]:
    """Rows needed at collection (per-sample mode); failures become usage errors."""
    if spec.source.kind == "none":
        raise pytest.UsageError(
            f"{where}: per_sample=True needs dataset= on the marker (rows become items at "
            "collection time)"
        )
    try:
        return session.load_rows(spec.source)
    except pytest.fail.Exception as exc:
        raise pytest.UsageError(f"{where}: {exc.msg}") from None
