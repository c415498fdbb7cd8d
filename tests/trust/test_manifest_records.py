"""Item 13: a local copy is recorded as a file, one timestamp format, per-cell gate results."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime

import pytest

from pytest_themis.experiment.manifest import validate_manifest
from pytest_themis.presets.builtin import DEMO_FILE


def test_local_copy_is_recorded_as_a_file_with_iso_timestamps_and_gates(
    door: pytest.Pytester,
) -> None:
    data = door.path / "data"
    data.mkdir()
    shutil.copy(DEMO_FILE, data / "demo.jsonl")
    result = door.runpytest(
        "-p", "no:cacheprovider", f"--themis-cache-dir={door.path / 'cache'}",
        "--themis-preset=demo", f"--themis-data-dir={data}", "--themis-fail-under=0.5",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    manifest = json.loads((door.path / "cache" / "manifest.json").read_text())
    validate_manifest(manifest)
    (dataset,) = manifest["datasets"]
    assert dataset["kind"] == "local_file"
    assert dataset["local_path"] == str(data / "demo.jsonl")
    assert dataset["file_sha256"] == hashlib.sha256(DEMO_FILE.read_bytes()).hexdigest()
    assert not {"revision", "config", "split"} & set(dataset)
    stamps = [
        manifest["created_at"],
        *(manifest["timings"][k] for k in ("started_at", "finished_at")),
    ]
    for stamp in stamps:
        parsed = datetime.fromisoformat(stamp)
        assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0
    (gate,) = manifest["cells"][0]["gates"]
    assert gate == {
        "metric": "NumericMatch", "op": ">=", "threshold": 0.5, "mode": "point",
        "compared": manifest["cells"][0]["metrics"]["NumericMatch"]["mean"], "passed": True,
    }  # fmt: skip


def test_schema_rejects_hub_fields_on_a_local_file() -> None:
    import jsonschema

    from pytest_themis.experiment.manifest import manifest_schema

    schema = manifest_schema()
    entry = {
        "name": "gsm8k", "kind": "local_file", "source": "/x/gsm8k.jsonl",
        "local_path": "/x/gsm8k.jsonl", "file_sha256": "0" * 64, "fingerprint": "f",
        "revision": "abc",
    }  # fmt: skip
    validator = jsonschema.Draft202012Validator(
        {**schema["properties"]["datasets"]["items"], "$defs": schema["$defs"]}
    )
    assert list(validator.iter_errors(entry))
    del entry["revision"]
    assert not list(validator.iter_errors(entry))
