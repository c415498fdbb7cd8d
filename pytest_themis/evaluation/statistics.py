"""Compatibility re-export: the statistics live in :mod:`pytest_themis.core.statistics`."""

from ..core.statistics import aggregate, t_critical, wilson_interval

__all__ = ["aggregate", "t_critical", "wilson_interval"]
