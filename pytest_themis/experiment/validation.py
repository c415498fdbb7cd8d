"""Checks that run before the first request, so a configuration mistake costs no generation.

Each function raises a :class:`~pytest_themis.errors.ThemisError` naming the row, field, metric
or gate and the fix. :func:`validate_run` bundles them; ``evaluate()`` calls it before running,
and the pytest plugin calls it at the end of collection (a usage error, exit code 4).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import ConfigurationError

#: Aggregates over epochs (``pass@k``, ``maj@k``): scores in [0, 1], present when epochs >= k
#: (checked where the epochs are known).
EPOCH_METRIC = re.compile(r"^(pass|maj)@([1-9][0-9]*)$")

__all__ = [
    "EPOCH_METRIC",
    "check_gates",
    "check_references",
    "check_rows",
    "metric_names",
    "metric_range",
    "validate_run",
]


def check_rows(plan: Any, rows: Iterable[Any]) -> list[Any]:
    """Every row has an id, the reference field and each template's fields (else a
    ``DatasetError``/``TemplateError`` naming the row); returns the prepared rows."""
    return list(plan.prepare(rows))


def metric_names(pipeline_or_metrics: Any) -> list[str]:
    """Names of the metrics a pipeline (or a list of metric objects) reports."""
    metrics = getattr(pipeline_or_metrics, "metrics", pipeline_or_metrics)
    return [str(getattr(m, "name", m)) for m in metrics or ()]


def metric_range(metric: Any) -> tuple[float, float] | None:
    """The closed interval a metric's scores lie in (``value_range``), or None if unbounded."""
    value = getattr(metric, "value_range", None)
    if value is None:
        return None
    low, high = value
    return float(low), float(high)


def check_references(plan: Any, pipeline_or_metrics: Any) -> None:
    """A metric that needs a gold answer needs ``reference_field`` on the plan."""
    if plan.reference_field is not None:
        return
    metrics = getattr(pipeline_or_metrics, "metrics", pipeline_or_metrics) or ()
    needing = [str(m.name) for m in metrics if getattr(m, "requires_reference", False)]
    if needing:
        raise ConfigurationError(
            f"metric(s) {', '.join(needing)} compare against a gold answer but no "
            "reference_field is set; pass reference_field='<the row field holding the answer>'"
        )


def check_gates(
    gates: Sequence[Any],
    metrics: Sequence[Any],
    primary: str | None,
    where: str = "--themis-fail-under",
) -> None:
    """Each gate names a metric the evaluation reports, with a threshold inside its range.

    ``gates`` are objects with ``metric`` (None = ``primary``) and ``value``; ``metrics`` the
    metric objects (or a pipeline).
    """
    metrics = list(getattr(metrics, "metrics", metrics) or ())
    by_name = {str(m.name): m for m in metrics}
    for gate in gates:
        name = gate.metric or primary
        if name is None:
            raise ConfigurationError(
                f"{where} {gate.value:g}: this evaluation has no primary metric; name one, "
                "e.g. --themis-fail-under ExactMatch=0.8"
            )
        epoch_metric = EPOCH_METRIC.match(name) is not None
        if name not in by_name and not epoch_metric:
            close = difflib.get_close_matches(name, list(by_name), n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigurationError(
                f"{where} {name}={gate.value:g}: no metric {name!r} in this evaluation; "
                f"{hint}available: {', '.join(by_name) or 'none'}"
            )
        bounds = (0.0, 1.0) if epoch_metric else metric_range(by_name[name])
        if bounds is not None and not bounds[0] <= gate.value <= bounds[1]:
            spelled = f"{gate.metric}=" if gate.metric else ""
            raise ConfigurationError(
                f"{where} {spelled}{gate.value:g}: {name} scores lie in "
                f"[{bounds[0]:g}, {bounds[1]:g}], so this gate can never pass; "
                f"write a share, e.g. {spelled}{gate.value / 100:g} for {gate.value:g}%"
                if gate.value > 1 and bounds == (0.0, 1.0)
                else f"{where} {spelled}{gate.value:g}: {name} scores lie in "
                f"[{bounds[0]:g}, {bounds[1]:g}]; choose a threshold inside that range"
            )


def validate_run(
    plan: Any,
    rows: Iterable[Mapping[str, Any]] | None,
    pipeline: Any,
    gates: Sequence[Any] = (),
    primary: str | None = None,
) -> None:
    """All of the above, in the order a user would fix them."""
    check_references(plan, pipeline)
    if rows is not None:
        check_rows(plan, rows)
    if gates:
        check_gates(gates, pipeline, primary)
