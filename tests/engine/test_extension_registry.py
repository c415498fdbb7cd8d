"""The extension registry in this process: built-ins arrive through the hooks."""

from __future__ import annotations

import pytest

from pytest_themis.errors import ConfigurationError
from pytest_themis.extensions import KINDS, registered


def test_built_ins_are_registered_through_the_hooks() -> None:
    assert {"exact_match", "numeric_match"} <= set(registered("metrics"))
    assert {"identity", "regex", "gsm8k"} <= set(registered("extractors"))
    assert {"fake", "litellm", "python"} <= set(registered("providers"))
    assert {"local", "sequential"} <= set(registered("backends"))
    assert "demo" in registered("presets")
    assert set(KINDS) == {"presets", "metrics", "extractors", "providers", "backends"}


def test_a_table_is_a_copy() -> None:
    registered("metrics").clear()
    assert "exact_match" in registered("metrics")


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="unknown extension kind 'widgets'.*presets"):
        registered("widgets")
