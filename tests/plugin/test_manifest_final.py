"""The session's one end step: the final manifest (samples, comparison, hash) written once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_themis.comparison.samples import rows_digest
from pytest_themis.experiment.manifest import manifest_hash, validate_manifest

TEST_FILE = """
import os
import pytest

ROWS = [{"id": f"r{i}", "q": f"{i} + {i}", "a": str(2 * i)} for i in range(30)]

@pytest.mark.themis(dataset=ROWS, prompts="{q}", models=["fake:m"], reference_field="a",
                    metrics=["exact_match"])
def test_eval(themis_report):
    pass
"""

# The hook records what it was handed, and whether jsonschema was imported by then.
CONFTEST = """
import json
import os
import sys


def pytest_themis_session_finished(manifest):
    seen = {"manifest": manifest, "jsonschema": "jsonschema" in sys.modules}
    with open(os.environ["THEMIS_HOOK_OUT"], "w") as fh:
        json.dump(seen, fh)
"""


def _session(pytester: pytest.Pytester, run_id: str, *args: str) -> tuple[dict, bool, Path]:
    """A pytest process; the final manifest its hook saw, whether jsonschema was imported."""
    out = pytester.path / f"{run_id}.hook.json"
    folder = pytester.path / "themis"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("THEMIS_HOOK_OUT", str(out))
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", f"--themis-cache-dir={folder}", f"--themis-run-id={run_id}",
            *args,
        )  # fmt: skip
    result.assert_outcomes(passed=1)
    seen = json.loads(out.read_text())
    return seen["manifest"], seen["jsonschema"], folder


def test_hook_gets_the_final_manifest_with_samples_comparison_and_a_verifying_hash(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_eval=TEST_FILE)
    pytester.makeconftest(CONFTEST)
    _session(pytester, "base")
    manifest, imported_jsonschema, folder = _session(pytester, "new", "--themis-baseline=base")
    assert not imported_jsonschema  # the session-end check needs no jsonschema
    assert manifest["samples"]["count"] == 30
    assert manifest["comparison"]["baseline_run_id"] == "base"
    assert manifest["comparison"]["run_id"] == "new"
    assert manifest["manifest_sha256"] == manifest_hash(manifest)
    # The file on disk is the manifest the hook saw; the run's copy verifies too.
    written = json.loads((folder / "manifest.json").read_text())
    assert written == manifest
    run_copy = json.loads((folder / "runs" / "new.json").read_text())
    assert run_copy["samples"]["path"] == "new.samples.jsonl"
    assert run_copy["manifest_sha256"] == manifest_hash(run_copy) == manifest["manifest_sha256"]
    for real in (manifest, run_copy):
        validate_manifest(real)  # the JSON Schema, in full
    # the samples file is referenced by its bytes and by its content, which the hash covers
    rows = [json.loads(line) for line in (folder / "runs" / "new.samples.jsonl").open()]
    assert manifest["samples"]["content_sha256"] == rows_digest(rows)


def test_a_cached_rerun_has_the_same_manifest_hash(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_eval=TEST_FILE)
    pytester.makeconftest(CONFTEST)
    first, _, folder = _session(pytester, "same")
    rerun, _, _ = _session(pytester, "same")
    assert rerun["cells"][0]["execution"]["cached"] == 30  # every generation from the cache
    assert rerun["samples"]["sha256"] != first["samples"]["sha256"]  # the cached flags differ
    assert rerun["samples"]["content_sha256"] == first["samples"]["content_sha256"]
    assert rerun["manifest_sha256"] == first["manifest_sha256"]


def test_hash_covers_the_comparison_and_the_samples_count(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_eval=TEST_FILE)
    pytester.makeconftest(CONFTEST)
    _session(pytester, "base")
    manifest, _, _ = _session(pytester, "new", "--themis-baseline=base")
    tampered = json.loads(json.dumps(manifest))
    tampered["comparison"]["margin"] = manifest["comparison"]["margin"] + 0.5
    assert manifest_hash(tampered) != manifest["manifest_sha256"]
    tampered = json.loads(json.dumps(manifest))
    tampered["samples"]["count"] += 1
    assert manifest_hash(tampered) != manifest["manifest_sha256"]
    tampered = json.loads(json.dumps(manifest))
    tampered["samples"]["content_sha256"] = "0" * 64
    assert manifest_hash(tampered) != manifest["manifest_sha256"]
