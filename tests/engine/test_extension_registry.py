"""The extension registry in this process: built-ins arrive through the hooks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_themis.errors import ConfigurationError
from pytest_themis.extensions import KINDS, registered


def test_built_ins_are_registered_through_the_hooks() -> None:
    assert {"exact_match", "numeric_match"} <= set(registered("metrics"))
    assert {"identity", "regex", "gsm8k"} <= set(registered("extractors"))
    assert {"fake", "litellm", "python"} <= set(registered("providers"))
    assert {"threads", "sequential"} <= set(registered("backends"))
    assert "demo" in registered("presets")
    assert set(KINDS) == {"presets", "metrics", "extractors", "providers", "backends"}


def test_a_table_is_a_copy() -> None:
    registered("metrics").clear()
    assert "exact_match" in registered("metrics")


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="unknown extension kind 'widgets'.*presets"):
        registered("widgets")


def test_a_built_in_module_imported_afresh_is_registered_afresh(tmp_path: Path) -> None:
    """pytest's in-process runs drop the modules they imported; the registry must follow."""
    script = tmp_path / "reimport.py"
    script.write_text(
        "import sys\n"
        "import pytest_themis.extensions as ext\n"
        "from pytest_themis.presets import get_benchmark_preset\n"
        "assert get_benchmark_preset('demo').name == 'demo'\n"
        "for name in [m for m in sys.modules if m.startswith('pytest_themis.presets')]:\n"
        "    del sys.modules[name]\n"
        "from pytest_themis.presets import BenchmarkPreset, get_benchmark_preset\n"
        "assert isinstance(get_benchmark_preset('demo'), BenchmarkPreset)\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
